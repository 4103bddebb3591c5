// panva openid-client against the auth plane: discovery, code flow with PKCE,
// ID-token validation, userinfo, refresh, introspection, revocation and
// client credentials. Prints one JSON object with what it saw; exits non-zero
// when the library rejects something.
//
// Environment: ISSUER, CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USERNAME,
// PASSWORD, TOTP, SERVICE_SCOPE (scope of the client-credentials request,
// none when empty) and MODE ("flow", or "wrong-nonce" to check that the library
// rejects an ID token whose nonce differs from the one it sent).
import * as client from 'openid-client';

const env = process.env;
const insecure = { execute: [client.allowInsecureRequests] };

// The client is registered for client_secret_basic; openid-client defaults to client_secret_post.
const config = await client.discovery(
  new URL(env.ISSUER), env.CLIENT_ID, env.CLIENT_SECRET, client.ClientSecretBasic(env.CLIENT_SECRET), insecure,
);

const verifier = client.randomPKCECodeVerifier();
const state = client.randomState();
const nonce = client.randomNonce();
const authorizationUrl = client.buildAuthorizationUrl(config, {
  redirect_uri: env.REDIRECT_URI,
  scope: 'openid profile email offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  state,
  nonce,
});

// Play the user's browser: open the login page, submit the form.
let response = await fetch(authorizationUrl, { redirect: 'manual' });
if (response.status !== 200) throw new Error(`login page answered ${response.status}`);
const cookies = response.headers.getSetCookie().map((cookie) => cookie.split(';')[0]).join('; ');
const html = await response.text();
const form = new URLSearchParams();
for (const match of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
  form.set(match[1], match[2].replaceAll('&amp;', '&'));
}
form.set('username', env.USERNAME);
form.set('password', env.PASSWORD);
form.set('totp', env.TOTP);
response = await fetch(`${env.ISSUER}/login`, { method: 'POST', body: form, headers: { cookie: cookies }, redirect: 'manual' });
if (response.status !== 303) throw new Error(`login answered ${response.status}: ${await response.text()}`);
const callback = new URL(response.headers.get('location'));

const tokens = await client.authorizationCodeGrant(config, callback, {
  pkceCodeVerifier: verifier,
  expectedState: state,
  expectedNonce: env.MODE === 'wrong-nonce' ? client.randomNonce() : nonce,
  idTokenExpected: true,
});
const claims = tokens.claims();
const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
const introspection = await client.tokenIntrospection(config, refreshed.access_token);
await client.tokenRevocation(config, refreshed.refresh_token, { token_type_hint: 'refresh_token' });
const afterRevocation = await client.tokenIntrospection(config, refreshed.access_token);
const service = await client.clientCredentialsGrant(config, env.SERVICE_SCOPE ? { scope: env.SERVICE_SCOPE } : {});

console.log(JSON.stringify({
  issuer: config.serverMetadata().issuer,
  claims,
  userinfo,
  refreshed: Boolean(refreshed.access_token && refreshed.refresh_token !== tokens.refresh_token),
  refreshedIdToken: Boolean(refreshed.id_token),
  introspection,
  afterRevocation,
  serviceTokenType: service.token_type,
}));

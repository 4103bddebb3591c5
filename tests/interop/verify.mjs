// Independent SD-JWT VC verifier for the interop tests, built on @sd-jwt/sd-jwt-vc.
//
// Reads one JSON object from stdin:
//   {"presentation": str, "issuer_jwk": {...public JWK with kid...}, "aud": str,
//    "nonce": str, "now": int, "status_list_token": str (optional)}
// Verifies the issuer signature, exp/nbf/iat at `now`, the disclosures and the
// key binding (required: the nonce is always passed), then prints
//   {"payload": {...decoded claims...}, "header": {...}, "kb": {...}}
// on stdout and exits 0. Any failure prints the reason on stderr and exits 1.
//
// The library checks the KB-JWT nonce and sd_hash but not its aud, typ of the
// issuer JWT or the kid, so this script checks those itself.

import { ES256, digest, getVerifier } from '@sd-jwt/crypto-nodejs';
import { SDJwtVcInstance } from '@sd-jwt/sd-jwt-vc';

const SKEW_SECONDS = 30;
const MAX_KB_AGE_SECONDS = 300;

function decodeSegment(segment) {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

// Returns a verifier for the alg named in the signed data's own header; other algs fail.
function verifierFor(jwk) {
  return async (data, signature) => {
    const header = decodeSegment(data.split('.')[0]);
    let verify;
    if (header.alg === 'ES256' && jwk.kty === 'EC' && jwk.crv === 'P-256') {
      verify = await ES256.getVerifier(jwk);
    } else if (header.alg === 'EdDSA' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
      verify = await getVerifier(jwk, { name: 'Ed25519' }, { name: 'Ed25519' });
    } else {
      throw new Error(`alg ${header.alg} does not fit key ${jwk.kty}/${jwk.crv}`);
    }
    return verify(data, signature);
  };
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function main() {
  const input = await readStdin();
  const issuerJwk = input.issuer_jwk;
  const issuerHeader = decodeSegment(input.presentation.split('~')[0].split('.')[0]);
  if (issuerHeader.typ !== 'dc+sd-jwt') {
    throw new Error(`issuer JWT typ is ${issuerHeader.typ}, expected dc+sd-jwt`);
  }
  if (issuerHeader.kid !== issuerJwk.kid) {
    throw new Error(`issuer JWT kid ${issuerHeader.kid} is not ${issuerJwk.kid}`);
  }

  const sdjwt = new SDJwtVcInstance({
    hasher: digest,
    verifier: verifierFor(issuerJwk),
    kbVerifier: (data, signature, payload) => verifierFor(payload.cnf.jwk)(data, signature),
    statusListFetcher: async (uri) => {
      if (!input.status_list_token) throw new Error(`no status list token given for ${uri}`);
      const subject = decodeSegment(input.status_list_token.split('.')[1]).sub;
      if (subject !== uri) throw new Error(`status list token is for ${subject}, not ${uri}`);
      return input.status_list_token;
    },
  });

  const result = await sdjwt.verify(input.presentation, {
    keyBindingNonce: input.nonce,
    currentDate: input.now,
    skewSeconds: SKEW_SECONDS,
  });
  if (!result.kb) throw new Error('presentation has no key binding');
  if (result.kb.payload.aud !== input.aud) {
    throw new Error(`KB-JWT aud is ${result.kb.payload.aud}, expected ${input.aud}`);
  }
  const age = input.now - result.kb.payload.iat;
  if (age > MAX_KB_AGE_SECONDS || age < -SKEW_SECONDS) {
    throw new Error(`KB-JWT iat ${result.kb.payload.iat} is outside the allowed window`);
  }
  process.stdout.write(JSON.stringify({ payload: result.payload, header: result.header, kb: result.kb }));
}

main().catch((error) => {
  process.stderr.write(`verification failed: ${error.message}\n`);
  process.exit(1);
});

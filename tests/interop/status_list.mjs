// Independent Token Status List decoder for the interop tests, built on
// @sd-jwt/jwt-status-list.
//
// Reads one JSON object from stdin, in one of two forms:
//   {"lst": str, "bits": int, "indexes": [int, ...]}
//       decodes a bare status list;
//   {"token": str, "issuer_jwk": {...}, "uri": str, "now": int, "indexes": [int, ...]}
//       verifies a status list token (signature, typ, sub, exp) and decodes its list.
// Prints {"bits": int, "statuses": [int, ...]} for the requested indexes, plus "sub"
// for a token, and exits 0. Any failure prints the reason on stderr and exits 1.

import { Jwt } from '@sd-jwt/core';
import { ES256, getVerifier } from '@sd-jwt/crypto-nodejs';
import { StatusList, getListFromStatusListJWT } from '@sd-jwt/jwt-status-list';

function decodeSegment(segment) {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

async function verifierFor(jwk, alg) {
  if (alg === 'ES256' && jwk.kty === 'EC' && jwk.crv === 'P-256') return ES256.getVerifier(jwk);
  if (alg === 'EdDSA' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519') {
    return getVerifier(jwk, { name: 'Ed25519' }, { name: 'Ed25519' });
  }
  throw new Error(`alg ${alg} does not fit key ${jwk.kty}/${jwk.crv}`);
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

async function main() {
  const input = await readStdin();
  if (input.lst !== undefined) {
    const list = StatusList.decompressStatusList(input.lst, input.bits);
    const statuses = input.indexes.map((index) => list.getStatus(index));
    process.stdout.write(JSON.stringify({ bits: list.getBitsPerStatus(), statuses }));
    return;
  }

  const header = decodeSegment(input.token.split('.')[0]);
  if (header.typ !== 'statuslist+jwt') throw new Error(`typ is ${header.typ}`);
  if (header.kid !== input.issuer_jwk.kid) throw new Error(`kid ${header.kid} is unknown`);
  const jwt = Jwt.fromEncode(input.token);
  const verify = await verifierFor(input.issuer_jwk, header.alg);
  await jwt.verify(verify, { currentDate: input.now });
  if (jwt.payload.sub !== input.uri) throw new Error(`sub is ${jwt.payload.sub}, not ${input.uri}`);

  const list = getListFromStatusListJWT(input.token);
  const statuses = input.indexes.map((index) => list.getStatus(index));
  process.stdout.write(
    JSON.stringify({ bits: list.getBitsPerStatus(), sub: jwt.payload.sub, statuses }),
  );
}

main().catch((error) => {
  process.stderr.write(`status list check failed: ${error.message}\n`);
  process.exit(1);
});

// keygen.mjs - write a js-libp2p private key and print its peer id.
//
// Usage: scripts/node tests/interop/js/keygen.mjs TYPE FILE [BITS]
//   TYPE  Ed25519 | secp256k1 | RSA   (case-insensitive)
//   FILE  receives privateKeyToProtobuf(key): the libp2p `PrivateKey` protobuf (mode 0600)
//   BITS  RSA modulus size (default 2048)
// Prints peerIdFromPrivateKey(key).toString() on stdout, nothing else.
//
//        scripts/node tests/interop/js/keygen.mjs --read FILE
// Loads FILE (written by anyone, e.g. lp2p-node) with privateKeyFromProtobuf and prints
//   line 1: its peer id
//   line 2: its type (Ed25519, secp256k1, RSA, ECDSA)
//   line 3: "canonical" if privateKeyToProtobuf() gives back exactly the file's bytes, else "differs"
import { readFileSync, writeFileSync } from 'node:fs'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

const TYPES = { ed25519: 'Ed25519', secp256k1: 'secp256k1', rsa: 'RSA' }

const [typeArg, file, bitsArg] = process.argv.slice(2)
if (typeArg === '--read' && file != null) {
  const bytes = new Uint8Array(readFileSync(file))
  const key = privateKeyFromProtobuf(bytes)
  const again = privateKeyToProtobuf(key)
  const same = again.length === bytes.length && again.every((b, i) => b === bytes[i])
  process.stdout.write(`${peerIdFromPrivateKey(key).toString()}\n${key.type}\n${same ? 'canonical' : 'differs'}\n`)
  process.exit(0)
}
const type = TYPES[String(typeArg).toLowerCase()]
if (type == null || file == null) {
  process.stderr.write('usage: keygen.mjs Ed25519|secp256k1|RSA FILE [BITS] | keygen.mjs --read FILE\n')
  process.exit(2)
}
const bits = bitsArg != null ? Number(bitsArg) : 2048
if (!Number.isInteger(bits) || bits < 1024) {
  process.stderr.write(`keygen.mjs: bad RSA size ${bitsArg}\n`)
  process.exit(2)
}

const key = type === 'RSA' ? await generateKeyPair('RSA', bits) : await generateKeyPair(type)
writeFileSync(file, privateKeyToProtobuf(key), { mode: 0o600 })
process.stdout.write(peerIdFromPrivateKey(key).toString() + '\n')

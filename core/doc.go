// Package core is goat-gateway's domain vocabulary: commits and their ids and
// signatures, the JSON value model and its RFC 8785 canonical form, schemas
// and their field types, deltas, name rules, and the sentinel errors every
// other package wraps.
//
// It is pure: no I/O, no clock, no goroutines, no global randomness, and it
// imports nothing else of goat-gateway. Everything here is a wire contract
// that the TypeScript SDK and third-party clients reproduce byte for byte;
// testdata/commits.json and testdata/schemas.json are the vectors that prove
// it (regenerate with `go test ./core -run TestVectors -update`), and
// tools/vectors/verify-commits.mjs checks them with code that shares nothing
// with this package.
//
// Guarantees:
//   - A Commit's JSON (MarshalJSON) is always its canonical form, so equal
//     commits are equal bytes everywhere.
//   - DecodeCommit accepts only well-formed commits whose id recomputes;
//     every refusal wraps ErrInvalid or ErrTooLarge and names the field.
//   - ApplyDelta(a, Diff(s, a, b)) equals b for all objects a and b.
package core

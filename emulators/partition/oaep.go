package partition

import (
	"crypto"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
)

// DecodeOAEP performs EME-OAEP decoding (RFC 8017 section 7.1.2 step 3) of
// em, the raw RSA decryption result (c^d mod n) of a ciphertext, for a key
// whose modulus is k bytes long. The hash h is used for both the label hash
// and MGF1 (crypto.SHA256 for RSA-OAEP-256, crypto.SHA1 for RSA-OAEP).
//
// em may be shorter than k (a raw decryption that dropped leading zero
// bytes); it is left-padded. Any decoding failure returns an error wrapping
// ErrDecrypt that does not say which check failed; the checks run in
// constant time with respect to the contents of em. The PKCS#11 backend uses
// it to offer RSA-OAEP-256 on tokens that only do OAEP with SHA-1.
func DecodeOAEP(h crypto.Hash, k int, em, label []byte) ([]byte, error) {
	if !h.Available() {
		return nil, fmt.Errorf("decode oaep: hash %v not linked in: %w", h, ErrBadInput)
	}
	hf := h.New()
	hLen := hf.Size()
	if k < 2*hLen+2 || len(em) > k {
		return nil, fmt.Errorf("decode oaep: %w", ErrDecrypt)
	}
	buf := make([]byte, k)
	copy(buf[k-len(em):], em)
	defer clear(buf)

	hf.Write(label)
	lHash := hf.Sum(nil)
	hf.Reset()

	firstByteIsZero := subtle.ConstantTimeByteEq(buf[0], 0)
	seed := buf[1 : hLen+1]
	db := buf[hLen+1:]
	mgf1XOR(seed, hf, db)
	mgf1XOR(db, hf, seed)

	lHashGood := subtle.ConstantTimeCompare(lHash, db[:hLen])

	// The rest of db is zero or more 0x00, then 0x01, then the message.
	var lookingForIndex, index, invalid int
	lookingForIndex = 1
	rest := db[hLen:]
	for i := range rest {
		equals0 := subtle.ConstantTimeByteEq(rest[i], 0)
		equals1 := subtle.ConstantTimeByteEq(rest[i], 1)
		index = subtle.ConstantTimeSelect(lookingForIndex&equals1, i, index)
		lookingForIndex = subtle.ConstantTimeSelect(equals1, 0, lookingForIndex)
		invalid = subtle.ConstantTimeSelect(lookingForIndex&^equals0, 1, invalid)
	}
	if firstByteIsZero&lHashGood&^invalid&^lookingForIndex != 1 {
		return nil, fmt.Errorf("decode oaep: %w", ErrDecrypt)
	}
	out := make([]byte, len(rest)-index-1)
	copy(out, rest[index+1:])
	return out, nil
}

// mgf1XOR XORs out with MGF1(seed) (RFC 8017 appendix B.2.1) using h, which
// it resets.
func mgf1XOR(out []byte, h hash.Hash, seed []byte) {
	var counter [4]byte
	var digest []byte
	done := 0
	for done < len(out) {
		h.Reset()
		h.Write(seed)
		h.Write(counter[:])
		digest = h.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		binary.BigEndian.PutUint32(counter[:], binary.BigEndian.Uint32(counter[:])+1)
	}
	h.Reset()
}

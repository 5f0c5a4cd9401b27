package device

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
)

// The Typed* functions read one atomic value of an EIP-712 document (as encoding/json with
// UseNumber, or go-ethereum's apitypes, leave it in a TypedData's message or domain) for the
// drivers that stream documents to a device; each driver then lays the value out as its
// firmware reads it (padding, integer width).

// TypedString reads a string value.
func TypedString(v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", errors.New("not a string")
	}
	return s, nil
}

// TypedBool reads a bool value: a JSON bool, or the strings "true" and "false".
func TypedBool(v any) (bool, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		if b == "true" || b == "false" {
			return b == "true", nil
		}
	}
	return false, errors.New("not a bool")
}

// TypedAddress reads an address value: a 0x-prefixed hex string of 20 bytes.
func TypedAddress(v any) (common.Address, error) {
	switch a := v.(type) {
	case string:
		if common.IsHexAddress(a) {
			return common.HexToAddress(a), nil
		}
	case common.Address:
		return a, nil
	}
	return common.Address{}, errors.New("not an address")
}

// TypedBytes reads a bytes value (size 0) or a bytesN value (size N, at most N bytes; the
// caller pads): a 0x-prefixed hex string.
func TypedBytes(v any, size int) ([]byte, error) {
	var b []byte
	switch x := v.(type) {
	case string:
		var err error
		if b, err = hexutil.Decode(x); err != nil {
			return nil, err
		}
	case []byte:
		b = x
	case hexutil.Bytes:
		b = x
	default:
		return nil, errors.New("not bytes")
	}
	if size > 0 && len(b) > size {
		return nil, fmt.Errorf("%d bytes for bytes%d", len(b), size)
	}
	return b, nil
}

// maxExactFloat is the largest integer every smaller one of which float64 holds exactly.
const maxExactFloat = 1 << 53

// TypedInteger reads an intN (signed) or uintN value of size bytes and checks its range.
// Numbers come as json.Number, decimal or 0x-hex strings (negative: decimal only),
// go-ethereum's HexOrDecimal256, *big.Int or Go integers; a float64 (encoding/json without
// UseNumber) only when it is an integer of at most 2^53, since above that the document's
// digits are already lost.
func TypedInteger(v any, size int, signed bool) (*big.Int, error) {
	n, err := typedInteger(v)
	if err != nil {
		return nil, err
	}
	lo, hi := new(big.Int), new(big.Int).Lsh(big.NewInt(1), uint(size*8)) // [lo, hi)
	if signed {
		hi.Rsh(hi, 1)
		lo.Neg(hi)
	}
	if n.Cmp(lo) < 0 || n.Cmp(hi) >= 0 {
		return nil, fmt.Errorf("%s does not fit %d bytes", n, size)
	}
	return n, nil
}

func typedInteger(v any) (*big.Int, error) {
	switch x := v.(type) {
	case *big.Int:
		if x != nil {
			return new(big.Int).Set(x), nil
		}
	case *math.HexOrDecimal256:
		if x != nil {
			return new(big.Int).Set((*big.Int)(x)), nil
		}
	case math.HexOrDecimal256:
		return new(big.Int).Set((*big.Int)(&x)), nil
	case json.Number:
		return typedInteger(x.String())
	case string:
		if n, ok := math.ParseBig256(x); ok {
			return n, nil
		}
		if strings.HasPrefix(x, "-") {
			if n, ok := new(big.Int).SetString(x, 10); ok {
				return n, nil
			}
		}
		return nil, fmt.Errorf("%q is not an integer", x)
	case float64:
		if x == float64(int64(x)) && x <= maxExactFloat && x >= -maxExactFloat {
			return big.NewInt(int64(x)), nil
		}
		return nil, fmt.Errorf("%v is not an integer of at most 2^53 (write larger ones as strings)", x)
	case int:
		return big.NewInt(int64(x)), nil
	case int64:
		return big.NewInt(x), nil
	case uint64:
		return new(big.Int).SetUint64(x), nil
	}
	return nil, fmt.Errorf("%v is not an integer", v)
}

// TwosComplement returns n in size bytes, big-endian, two's complement when negative; n
// must fit (TypedInteger checks it).
func TwosComplement(n *big.Int, size int) []byte {
	if n.Sign() < 0 {
		n = new(big.Int).Add(n, new(big.Int).Lsh(big.NewInt(1), uint(size*8)))
	}
	return n.FillBytes(make([]byte, size))
}

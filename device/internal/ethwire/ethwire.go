// Package ethwire is the calldata loop of EthereumSignTx that the Trezor and KeepKey
// drivers share: the host sends the first chunk in the request, the device asks for each
// next one with EthereumTxRequest.data_length, and a request without data_length carries
// the signature. Both families number and name the field alike (data_length); the
// request and ack messages stay each family's. Hand-written.
package ethwire

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/hwbridge/hwbridge/device"
)

// StreamTx sends req (which carried data[:sent]) through call and feeds the device the rest
// of data in the chunks it asks for (at most maxChunk each, built by ack). The final
// request goes to final, which returns the signature; StreamTx then checks that the device
// took all of data.
func StreamTx[R proto.Message](req proto.Message, data []byte, sent, maxChunk int,
	call func(proto.Message) (R, error), ack func(chunk []byte) proto.Message, final func(R) ([]byte, error)) ([]byte, error) {
	for {
		r, err := call(req)
		if err != nil {
			return nil, err
		}
		m := r.ProtoReflect()
		fd := m.Descriptor().Fields().ByName("data_length")
		if fd == nil {
			return nil, fmt.Errorf("%w: %s has no data_length", device.ErrProtocol, m.Descriptor().FullName())
		}
		if !m.Has(fd) {
			sig, err := final(r)
			if err != nil {
				return nil, err
			}
			if sent != len(data) {
				return nil, fmt.Errorf("%w: device signed after %d of %d calldata bytes", device.ErrProtocol, sent, len(data))
			}
			return sig, nil
		}
		n := int(m.Get(fd).Uint())
		if n == 0 || n > maxChunk || n > len(data)-sent {
			return nil, fmt.Errorf("%w: device asked for %d calldata bytes with %d left", device.ErrProtocol, n, len(data)-sent)
		}
		req = ack(data[sent : sent+n])
		sent += n
	}
}

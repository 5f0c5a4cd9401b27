package trezoremu

import "github.com/hwbridge/hwbridge/transport"

func transportPackets(typ uint16, body []byte) ([][]byte, error) {
	return transport.V1Packets(typ, body)
}

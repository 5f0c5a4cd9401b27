package transport

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// USB standard descriptors (USB 2.0 specification §9.6), as the Linux kernel exposes them in
// sysfs' "descriptors" file: the 18-byte device descriptor, then each configuration's full
// descriptor set (configuration, interface, endpoint and class descriptors back to back).
// Hand-written: only what finding a wallet interface needs.
//
//	device         0 bLength=18  1 type=1  2..3 bcdUSB  4 class  5 subclass  6 protocol
//	               7 bMaxPacketSize0  8..9 idVendor  10..11 idProduct  12..13 bcdDevice
//	               14 iManufacturer  15 iProduct  16 iSerial  17 bNumConfigurations
//	configuration  0 bLength≥9  1 type=2  2..3 wTotalLength  4 bNumInterfaces
//	               5 bConfigurationValue  6 iConfiguration  7 bmAttributes  8 bMaxPower
//	interface      0 bLength≥9  1 type=4  2 bInterfaceNumber  3 bAlternateSetting
//	               4 bNumEndpoints  5 class  6 subclass  7 protocol  8 iInterface
//	endpoint       0 bLength≥7  1 type=5  2 bEndpointAddress (bit 7: IN)  3 bmAttributes
//	               (bits 0..1: 0 control, 1 isochronous, 2 bulk, 3 interrupt)
//	               4..5 wMaxPacketSize  6 bInterval
//
// Multi-byte fields are little-endian. Other descriptors (HID, interface association, …)
// are skipped by their bLength.
const (
	usbDescDevice    = 1
	usbDescConfig    = 2
	usbDescInterface = 4
	usbDescEndpoint  = 5

	usbClassHID    = 0x03
	usbClassVendor = 0xFF

	usbEndpointIn        = 0x80
	usbTransferInterrupt = 3

	// usbMaxDescriptors caps what parseUSBDescriptors reads: a full-speed device's
	// configurations fit in a few hundred bytes (wTotalLength is 16 bits per configuration).
	usbMaxDescriptors = 64 << 10
)

// ErrBadDescriptor: USB descriptor bytes that do not parse.
var ErrBadDescriptor = errors.New("transport: malformed usb descriptor")

// usbDevice is what the descriptors say about one USB device.
type usbDevice struct {
	Vendor, Product, Release uint16 // idVendor, idProduct, bcdDevice
	Configs                  []usbConfig
}

type usbConfig struct {
	Value      uint8 // bConfigurationValue
	Interfaces []usbInterface
}

type usbInterface struct {
	Number, Alt, Class, SubClass, Protocol uint8
	Endpoints                              []usbEndpoint
}

type usbEndpoint struct {
	Address, Attributes uint8
	MaxPacket           uint16
	Interval            uint8
}

// In reports whether the endpoint sends to the host.
func (e usbEndpoint) In() bool { return e.Address&usbEndpointIn != 0 }

// Interrupt reports whether it is an interrupt endpoint.
func (e usbEndpoint) Interrupt() bool { return e.Attributes&3 == usbTransferInterrupt }

// parseUSBDescriptors decodes a device descriptor followed by configuration descriptor sets.
func parseUSBDescriptors(b []byte) (usbDevice, error) {
	var d usbDevice
	if len(b) > usbMaxDescriptors {
		return d, fmt.Errorf("%w: %d bytes (max %d)", ErrBadDescriptor, len(b), usbMaxDescriptors)
	}
	if len(b) < 18 || b[0] < 18 || b[1] != usbDescDevice {
		return d, fmt.Errorf("%w: no device descriptor at the start", ErrBadDescriptor)
	}
	if int(b[0]) > len(b) {
		return d, fmt.Errorf("%w: device descriptor of %d bytes in %d", ErrBadDescriptor, b[0], len(b))
	}
	d.Vendor = binary.LittleEndian.Uint16(b[8:])
	d.Product = binary.LittleEndian.Uint16(b[10:])
	d.Release = binary.LittleEndian.Uint16(b[12:])
	for off := int(b[0]); off < len(b); {
		n := int(b[off])
		if n < 2 || off+n > len(b) {
			return d, fmt.Errorf("%w: descriptor at byte %d has length %d (%d bytes left)", ErrBadDescriptor, off, n, len(b)-off)
		}
		desc := b[off : off+n]
		off += n
		switch desc[1] {
		case usbDescConfig:
			if n < 9 {
				return d, fmt.Errorf("%w: configuration descriptor of %d bytes", ErrBadDescriptor, n)
			}
			d.Configs = append(d.Configs, usbConfig{Value: desc[5]})
		case usbDescInterface:
			if n < 9 {
				return d, fmt.Errorf("%w: interface descriptor of %d bytes", ErrBadDescriptor, n)
			}
			if len(d.Configs) == 0 {
				return d, fmt.Errorf("%w: interface descriptor outside a configuration", ErrBadDescriptor)
			}
			c := &d.Configs[len(d.Configs)-1]
			c.Interfaces = append(c.Interfaces, usbInterface{Number: desc[2], Alt: desc[3], Class: desc[5], SubClass: desc[6], Protocol: desc[7]})
		case usbDescEndpoint:
			if n < 7 {
				return d, fmt.Errorf("%w: endpoint descriptor of %d bytes", ErrBadDescriptor, n)
			}
			if len(d.Configs) == 0 || len(d.Configs[len(d.Configs)-1].Interfaces) == 0 {
				return d, fmt.Errorf("%w: endpoint descriptor outside an interface", ErrBadDescriptor)
			}
			c := &d.Configs[len(d.Configs)-1]
			i := &c.Interfaces[len(c.Interfaces)-1]
			i.Endpoints = append(i.Endpoints, usbEndpoint{Address: desc[2], Attributes: desc[3],
				MaxPacket: binary.LittleEndian.Uint16(desc[4:]), Interval: desc[6]})
		case usbDescDevice:
			return d, fmt.Errorf("%w: a second device descriptor at byte %d", ErrBadDescriptor, off-n)
		}
	}
	return d, nil
}

// appendUSBDescriptors encodes d as parseUSBDescriptors reads it (the fields it does not keep
// are zero, counts and lengths are recomputed): the other half of the fuzz round trip, and
// how tests build descriptors of devices not recorded.
func appendUSBDescriptors(b []byte, d usbDevice) []byte {
	dev := make([]byte, 18)
	dev[0], dev[1] = 18, usbDescDevice
	binary.LittleEndian.PutUint16(dev[2:], 0x0200)
	dev[7] = 64
	binary.LittleEndian.PutUint16(dev[8:], d.Vendor)
	binary.LittleEndian.PutUint16(dev[10:], d.Product)
	binary.LittleEndian.PutUint16(dev[12:], d.Release)
	dev[17] = byte(len(d.Configs))
	b = append(b, dev...)
	for _, c := range d.Configs {
		start := len(b)
		b = append(b, 9, usbDescConfig, 0, 0, byte(len(c.Interfaces)), c.Value, 0, 0x80, 50)
		for _, i := range c.Interfaces {
			b = append(b, 9, usbDescInterface, i.Number, i.Alt, byte(len(i.Endpoints)), i.Class, i.SubClass, i.Protocol, 0)
			for _, e := range i.Endpoints {
				b = append(b, 7, usbDescEndpoint, e.Address, e.Attributes, byte(e.MaxPacket), byte(e.MaxPacket>>8), e.Interval)
			}
		}
		binary.LittleEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

// rawWire is a wallet's vendor-class interface and its two interrupt endpoints.
type rawWire struct {
	Interface uint8
	In, Out   uint8
	MaxPacket int
}

// wireInterface finds the wallet interface in configuration value cfg (the active one): the
// vendor-class interface numbered iface, alternate setting 0, with an interrupt IN and an
// interrupt OUT endpoint of at least 64 bytes (trezorlib's WebUSB transport and trezord-go
// pick the same one: interface 0, endpoints 0x81/0x01, trezor.md §1.1).
func (d usbDevice) wireInterface(cfg uint8, iface uint8) (rawWire, error) {
	for _, c := range d.Configs {
		if c.Value != cfg {
			continue
		}
		for _, i := range c.Interfaces {
			if i.Number != iface || i.Alt != 0 {
				continue
			}
			if i.Class != usbClassVendor {
				return rawWire{}, fmt.Errorf("%w: interface %d is class 0x%02x, not vendor-specific", ErrBadDescriptor, iface, i.Class)
			}
			w := rawWire{Interface: iface}
			for _, e := range i.Endpoints {
				if !e.Interrupt() || e.MaxPacket&0x7FF < V1PacketSize {
					continue
				}
				if e.In() && w.In == 0 {
					w.In, w.MaxPacket = e.Address, int(e.MaxPacket&0x7FF)
				} else if !e.In() && w.Out == 0 {
					w.Out = e.Address
				}
			}
			if w.In == 0 || w.Out == 0 {
				return rawWire{}, fmt.Errorf("%w: interface %d has no pair of 64-byte interrupt endpoints", ErrBadDescriptor, iface)
			}
			return w, nil
		}
		return rawWire{}, fmt.Errorf("%w: configuration %d has no interface %d", ErrBadDescriptor, cfg, iface)
	}
	return rawWire{}, fmt.Errorf("%w: no configuration %d", ErrBadDescriptor, cfg)
}

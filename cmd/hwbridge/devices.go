package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hwbridge/hwbridge/transport"
)

// devicesCmd lists USB wallets and the device named with --device.
type devicesCmd struct{ e *env }

// deviceRow is one line of `hwbridge devices`.
type deviceRow struct {
	Path        string `json:"path"`
	Kind        string `json:"kind"`
	Model       string `json:"model,omitempty"`
	Version     string `json:"version,omitempty"`
	Label       string `json:"label,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	Emulator    bool   `json:"emulator"`
	Error       string `json:"error,omitempty"`
}

// probeTimeout bounds asking one device for its features and fingerprint.
const probeTimeout = 10 * time.Second

func runDevices(ctx context.Context, e *env, args []string) error {
	c := &devicesCmd{e: e}
	fs := e.flagSet("devices")
	if _, err := e.parse(fs, args, 0, 0); err != nil {
		return err
	}
	return c.run(ctx)
}

func (c *devicesCmd) run(ctx context.Context) error {
	e := c.e
	if rows, ok, err := e.daemonDevices(ctx); ok {
		if err != nil {
			return err
		}
		return c.print(rows) // hwbridged owns the devices (client.go)
	}
	infos, err := transport.Enumerate(ctx)
	if err != nil {
		e.log.Debug("usb enumeration unavailable", "err", err)
		if errors.Is(err, errors.ErrUnsupported) {
			e.noUSB = err // infos still holds what raw USB found
		} else {
			infos = nil
		}
	}
	rows := []deviceRow{}
	for _, in := range infos {
		row := deviceRow{Path: in.Path, Kind: in.Kind, Model: in.Model}
		switch {
		case in.Unsupported != nil:
			row.Error = in.Unsupported.Error()
		case drivers[in.Kind] == nil:
			row.Error = "no " + in.Kind + " driver in this build"
		default:
			c.probe(ctx, &row, in.Path)
		}
		rows = append(rows, row)
	}
	named := e.device
	if named == "" {
		named = strings.TrimSpace(e.getenv("HWBRIDGE_DEVICE"))
	}
	if strings.Contains(named, ":") {
		p, err := transport.ParsePath(named)
		if err != nil {
			return usagef("--device: %v", err)
		}
		kind, _ := kindOf(ctx, p)
		row := deviceRow{Path: p.String(), Kind: kind, Emulator: !p.USB()}
		if err := c.probe(ctx, &row, p.String()); err != nil && isNoDevice(err) {
			return err
		}
		rows = append(rows, row)
	}
	return c.print(rows)
}

func (c *devicesCmd) print(rows []deviceRow) error {
	e := c.e
	if e.json {
		return e.writeJSON(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintf(e.stderr, "hwbridge: no wallets found (%semulators are listed only when named with --device)\n", noUSBHint(e.noUSB))
	}
	if len(rows) > 0 {
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "PATH\tKIND\tMODEL\tFIRMWARE\tFINGERPRINT\tLABEL\tNOTE")
		for _, r := range rows {
			fmt.Fprintln(tw, r.text())
		}
		tw.Flush()
	}
	return nil
}

// probe fills row from the device's features and fingerprint; failures go in row.Error.
func (c *devicesCmd) probe(ctx context.Context, row *deviceRow, path string) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	err := c.fill(ctx, row, path)
	if err != nil {
		row.Error = err.Error()
	}
	return err
}

func (c *devicesCmd) fill(ctx context.Context, row *deviceRow, path string) error {
	d, err := c.e.openPath(ctx, path)
	if err != nil {
		return err
	}
	f, err := d.Features(ctx)
	if err != nil {
		return err
	}
	row.Kind, row.Model, row.Version, row.Label = string(f.Family), f.Model, f.Version, f.Label
	row.Emulator = row.Emulator || f.Emulator
	fp, err := d.Fingerprint(ctx)
	if err != nil {
		return err
	}
	row.Fingerprint = fp.String()
	return nil
}

// text is the row's table line (tab-separated, under print's header).
func (r deviceRow) text() string {
	label := ""
	if r.Label != "" {
		label = strconv.Quote(r.Label)
	}
	var note []string
	if r.Emulator {
		note = append(note, "emulator")
	}
	if r.Error != "" {
		note = append(note, "error: "+r.Error)
	}
	cells := []string{r.Path, r.Kind, r.Model, r.Version, r.Fingerprint, label, strings.Join(note, "; ")}
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
	}
	return strings.Join(cells, "\t")
}

package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/hwbridge/hwbridge/daemon/keys"
	"github.com/hwbridge/hwbridge/device"
)

// Namespace is the JSON-RPC namespace of the API: methods are Namespace + "_" + name.
const Namespace = "hwbridge"

// route is one authenticated method's policy.
type route struct {
	scopes []keys.Scope // all of them are required; none: any paired app
	audit  bool         // it reaches a device or a chain: write an audit record
}

var (
	read      = []keys.Scope{keys.ScopeRead}
	sign      = []keys.Scope{keys.ScopeSign}
	broadcast = []keys.Scope{keys.ScopeBroadcast}
	signSend  = []keys.Scope{keys.ScopeSign, keys.ScopeBroadcast}
	admin     = []keys.Scope{keys.ScopeAdmin}
)

// routes is the one place that says which scope each method needs. Every authenticated
// method of API has an entry (TestRouteTable checks it); version, v1Pair and v1Login need
// no key.
var routes = map[string]route{
	"v1Devices":          {scopes: read},
	"v1Events":           {scopes: read},
	"v1Features":         {scopes: read, audit: true},
	"v1Fingerprint":      {scopes: read},
	"v1Xpub":             {scopes: read, audit: true},
	"v1Address":          {scopes: read, audit: true},
	"v1SignPsbt":         {scopes: sign, audit: true},
	"v1SignMessage":      {scopes: sign, audit: true},
	"v1EthSignTx":        {scopes: sign, audit: true},
	"v1EthSignTypedData": {scopes: sign, audit: true},
	"v1EthSignTypedHash": {scopes: sign, audit: true},
	"v1EthSend":          {scopes: signSend, audit: true},
	"v1EthBroadcast":     {scopes: broadcast, audit: true},
	"v1BtcSend":          {scopes: signSend, audit: true},
	"v1BtcBroadcast":     {scopes: broadcast, audit: true},
	"v1AppsList":         {scopes: admin},
	"v1AppsApprove":      {scopes: admin, audit: true},
	"v1AppsDeny":         {scopes: admin, audit: true},
	"v1AppsRotate":       {scopes: admin, audit: true},
	"v1AppsRevoke":       {scopes: admin, audit: true},
	"v1RotateKey":        {audit: true},
	// What HWI cannot keep (policies.go, session.go).
	"v1BtcRegisterPolicy":  {scopes: sign, audit: true},
	"v1BtcPolicyAddress":   {scopes: read, audit: true},
	"v1BtcMultisigAddress": {scopes: read, audit: true},
	"v1Unlock":             {scopes: sign, audit: true},
	"v1PromptPin":          {scopes: sign, audit: true},
	"v1SendPin":            {scopes: sign, audit: true},
	"v1PoliciesList":       {scopes: admin},
	"v1Forget":             {scopes: admin, audit: true},
}

// readOnly reports whether the route needs only the read scope: its audit record may be
// written lazily (durable within audit.DefaultLazyDelay); every other audited call waits for
// its record to be durable.
func (r route) readOnly() bool {
	return len(r.scopes) > 0 && !slices.ContainsFunc(r.scopes, func(s keys.Scope) bool { return s != keys.ScopeRead })
}

// call is one authenticated request on its way through a handler.
type call struct {
	d      *Daemon
	app    keys.App
	method string // e.g. "v1Xpub"
	route  route
	dev    string // the device path used, for the audit record
}

// label names the request in prompt events.
func (c *call) label() string { return c.app.ID + "/" + c.method }

// begin authenticates a request, checks the route's scopes and decodes params strictly.
// A request that authenticates marks its connection as trusted (not closed when idle).
func (d *Daemon) begin(ctx context.Context, method string, auth keys.Auth, raw json.RawMessage, params any) (*call, error) {
	r, ok := routes[method]
	if !ok {
		return nil, fmt.Errorf("hwbridged has no route for %s: %w", method, errNoRoute)
	}
	app, err := d.verify.Check(Namespace+"_"+method, raw, auth)
	if err != nil {
		d.log.Info("request refused", "method", method, "app", auth.App, "err", err)
		return nil, err
	}
	d.conns.trust(ctx)
	for _, s := range r.scopes {
		if !app.Has(s) {
			return nil, fmt.Errorf("%w: %s needs scope %q; app %s has %v (pair again asking for it)", keys.ErrScope, method, s, app.ID, app.Scopes)
		}
	}
	if params != nil && len(bytes.TrimSpace(raw)) > 0 && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(params); err != nil {
			return nil, fmt.Errorf("%w: %s params: %v", device.ErrInvalidInput, method, err)
		}
	}
	return &call{d: d, app: app, method: method, route: r}, nil
}

var errNoRoute = fmt.Errorf("internal error")

// finish audits the call if its route says so and converts the error for the wire.
func (c *call) finish(summary string, err error) error {
	if c.route.audit {
		if aerr := c.d.record(c.app.ID, c.method, c.dev, summary, err, !c.route.readOnly()); aerr != nil && err == nil {
			err = aerr
		}
	}
	return toRPC(err)
}

// device resolves a device selector within the app's limits.
func (c *call) device(ctx context.Context, sel string) (string, error) {
	path, err := c.d.cfg.Hub.Select(ctx, sel)
	if err != nil {
		return "", err
	}
	c.dev = path
	if len(c.app.Limits.Devices) == 0 || c.app.AllowsDevice(path, "") {
		return path, nil
	}
	fp, err := c.d.cfg.Hub.Fingerprint(ctx, path)
	if err == nil && c.app.AllowsDevice(path, fp.String()) {
		return path, nil
	}
	return "", fmt.Errorf("%w: app %s may not use device %s", keys.ErrScope, c.app.ID, path)
}

// chain checks the app's chain limits.
func (c *call) chain(ch device.Chain) error {
	if !c.app.AllowsChain(string(ch)) {
		return fmt.Errorf("%w: app %s may not use chain %s", keys.ErrScope, c.app.ID, ch)
	}
	return nil
}

// do runs fn on the device at path through the hub's queue.
func (c *call) do(ctx context.Context, path string, fn func(ctx context.Context, d device.Device) error) error {
	return c.d.cfg.Hub.Do(ctx, path, c.label(), fn)
}

// onDevice checks the app may use chain ch, resolves the device selector within its limits
// and runs fn on that device through the hub's queue.
func (c *call) onDevice(ctx context.Context, sel string, ch device.Chain, fn func(ctx context.Context, d device.Device) error) error {
	if err := c.chain(ch); err != nil {
		return err
	}
	path, err := c.device(ctx, sel)
	if err != nil {
		return err
	}
	return c.do(ctx, path, fn)
}

// note logs a step of a long call (a fallback fee, a rebroadcast, a receipt wait).
func (c *call) note(s string) { c.d.log.Info(s, "app", c.app.ID, "method", c.method) }

// allowedDevices filters a device list by the app's limits (cached fingerprints only).
func allowedDevices(app keys.App, in []device.Info) []device.Info {
	return slices.DeleteFunc(in, func(i device.Info) bool { return !app.AllowsDevice(i.Path, i.Fingerprint) })
}

// methodName turns "v1Xpub" into the wire name.
func methodName(m string) string {
	if strings.Contains(m, "_") {
		return m
	}
	return Namespace + "_" + m
}

// appSwitchIf lets the device switch apps (device.WithAppSwitch) for a request that acts
// at the device (display); lookups never close the app the person has open.
func appSwitchIf(ctx context.Context, atDevice bool) context.Context {
	if atDevice {
		return device.WithAppSwitch(ctx)
	}
	return ctx
}

package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/hwbridge/hwbridge/daemon/keys"
)

// Client talks to hwbridged. The zero value dials DefaultSocket lazily; set Key to call
// authenticated methods. Safe for concurrent use.
type Client struct {
	Socket string // the socket path ("" : the default)
	Key    string // the app key (hwbk1.…)
	// Dial opens the connection; nil dials the unix socket (rpc.DialIPC).
	Dial func(ctx context.Context, socket string) (*rpc.Client, error)
	// Timeout bounds each call whose ctx has no deadline (DefaultClientTimeout if 0).
	Timeout time.Duration
	// Now is the clock for request timestamps (time.Now if nil).
	Now func() time.Time

	mu  sync.Mutex
	rpc *rpc.Client
}

// DefaultClientTimeout covers a confirmation on the device.
const DefaultClientTimeout = 10 * time.Minute

func (c *Client) socket() string {
	if c.Socket != "" {
		return c.Socket
	}
	return DefaultSocket(os.Getenv)
}

func (c *Client) conn(ctx context.Context) (*rpc.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rpc != nil {
		return c.rpc, nil
	}
	dial := c.Dial
	if dial == nil {
		dial = rpc.DialIPC
	}
	sock := c.socket()
	rc, err := dial(ctx, sock)
	if err != nil {
		return nil, fmt.Errorf("connect to hwbridged at %s (is it running? start hwbridged, or pass --direct): %w", sock, err)
	}
	c.rpc = rc
	return rc, nil
}

// Close closes the connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rpc != nil {
		c.rpc.Close()
		c.rpc = nil
	}
}

func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	t := c.Timeout
	if t <= 0 {
		t = DefaultClientTimeout
	}
	return context.WithTimeout(ctx, t)
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Call calls an authenticated method ("v1Xpub") with params (any JSON-marshalable value,
// or nil) and decodes the result into result (a pointer, or nil). It signs the request
// with the key; when the daemon restarted and asks for the key again, it logs in and
// retries once with a fresh nonce. Errors answered by the daemon are *RemoteError.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	if c.Key == "" {
		return fmt.Errorf("hwbridged %s: %w: this client has no app key", method, keys.ErrUnknownApp)
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	raw := json.RawMessage("{}")
	if params != nil {
		b, err := json.Marshal(params)
		if err != nil {
			return err
		}
		raw = b
	}
	rc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		auth, err := keys.Sign(c.Key, methodName(method), raw, c.now())
		if err != nil {
			return err
		}
		err = FromClientError(rc.CallContext(ctx, result, methodName(method), auth, raw))
		if attempt == 0 && errors.Is(err, keys.ErrLoginRequired) {
			if err := c.Login(ctx); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// Login hands the key to a daemon that restarted since the key was issued.
func (c *Client) Login(ctx context.Context) error {
	rc, err := c.conn(ctx)
	if err != nil {
		return err
	}
	return FromClientError(rc.CallContext(ctx, nil, Namespace+"_v1Login", LoginParams{Key: c.Key}))
}

// Version asks the daemon's version (no key needed).
func (c *Client) Version(ctx context.Context) (VersionResult, error) {
	ctx, cancel := c.bound(ctx)
	defer cancel()
	var v VersionResult
	rc, err := c.conn(ctx)
	if err != nil {
		return v, err
	}
	return v, FromClientError(rc.CallContext(ctx, &v, Namespace+"_version"))
}

// Pair asks to pair and waits until the user approves (hwbridge apps approve ID) or denies;
// on approval it sets c.Key and returns the result (the key is shown only this once).
func (c *Client) Pair(ctx context.Context, req keys.PairRequest) (*PairResult, error) {
	rc, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	var res PairResult
	if err := FromClientError(rc.CallContext(ctx, &res, Namespace+"_v1Pair", req)); err != nil {
		return nil, err
	}
	c.Key = res.Key
	return &res, nil
}

// Subscribe streams device events and prompts into ch until ctx ends or the returned
// subscription is unsubscribed.
func (c *Client) Subscribe(ctx context.Context, ch any) (*rpc.ClientSubscription, error) {
	rc, err := c.conn(ctx)
	if err != nil {
		return nil, err
	}
	raw := json.RawMessage("{}")
	for attempt := 0; ; attempt++ {
		auth, err := keys.Sign(c.Key, Namespace+"_v1Events", raw, c.now())
		if err != nil {
			return nil, err
		}
		sub, err := rc.Subscribe(ctx, Namespace, ch, "v1Events", auth, raw)
		err = FromClientError(err)
		if attempt == 0 && errors.Is(err, keys.ErrLoginRequired) {
			if err := c.Login(ctx); err != nil {
				return nil, err
			}
			continue
		}
		return sub, err
	}
}

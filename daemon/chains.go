package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"

	"github.com/hwbridge/hwbridge/chains/ethereum"
)

// chainClients keeps one client per node URL, so that nonces handed out back to back are
// tracked across requests.
type chainClients struct {
	log *slog.Logger

	mu  sync.Mutex
	eth map[string]*ethereum.Client
}

func newChainClients(log *slog.Logger) *chainClients {
	return &chainClients{log: log, eth: map[string]*ethereum.Client{}}
}

// maxNodes caps the node clients kept open.
const maxNodes = 16

func (c *chainClients) ethClient(ctx context.Context, url string) (*ethereum.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl := c.eth[url]; cl != nil {
		return cl, nil
	}
	cl, err := ethereum.Dial(ctx, url, c.log.With("chain", "eth"))
	if err != nil {
		return nil, err
	}
	if len(c.eth) >= maxNodes {
		for u, old := range c.eth {
			old.Close()
			delete(c.eth, u)
			break
		}
	}
	c.eth[url] = cl
	return cl, nil
}

func (c *chainClients) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for u, cl := range c.eth {
		cl.Close()
		delete(c.eth, u)
	}
}

// journalError is how the journal keeps a failed request's error: the wire form.
type journalError struct {
	Code    int       `json:"code"`
	Message string    `json:"message"`
	Data    ErrorData `json:"data"`
}

func encodeJournalError(err error) json.RawMessage {
	var re *rpcError
	if !errors.As(toRPC(err), &re) {
		b, _ := json.Marshal(journalError{Code: CodeInternal, Message: err.Error()})
		return b
	}
	b, _ := json.Marshal(journalError{Code: re.code, Message: re.msg, Data: re.data})
	return b
}

func decodeJournalError(b json.RawMessage) error {
	var je journalError
	if err := json.Unmarshal(b, &je); err != nil {
		return errors.New("the first attempt failed (its error could not be read back)")
	}
	return fromRPC(je.Code, je.Message, je.Data)
}

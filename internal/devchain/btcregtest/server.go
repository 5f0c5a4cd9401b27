package btcregtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/btcsuite/btcd/blockchain"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/database"
	"github.com/btcsuite/btcd/mempool"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
)

// ServerOptions configure the JSON-RPC server.
type ServerOptions struct {
	// Addr is the loopback listen address; empty means 127.0.0.1 on a free port.
	Addr string
	// User and Pass are the HTTP basic-auth credentials; an empty Pass means a random one.
	User, Pass string
	// MiningAddr receives the coinbase of blocks mined with "generate" (btcd's --miningaddr).
	MiningAddr btcutil.Address
}

// Server serves btcd's JSON-RPC (HTTP POST, basic auth) for a Chain.
type Server struct {
	c          *Chain
	user, pass string
	miningAddr btcutil.Address
	ln         net.Listener
	srv        *http.Server
	done       chan struct{}
}

// maxRequestBody bounds a request body; a raw transaction of a full block fits.
const maxRequestBody = 8 << 20

// Serve starts the JSON-RPC server on a loopback address.
func (c *Chain) Serve(opts ServerOptions) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("btcregtest: listen address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("btcregtest: refusing to serve on %s: use a loopback address such as 127.0.0.1:0", addr)
	}
	s := &Server{c: c, user: opts.User, pass: opts.Pass, miningAddr: opts.MiningAddr, done: make(chan struct{})}
	if s.user == "" {
		s.user = "hwbridge"
	}
	if s.pass == "" {
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("btcregtest: rpc password: %w", err)
		}
		s.pass = hex.EncodeToString(b[:])
	}
	s.ln, err = net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("btcregtest: listen on %s (is the port in use?): %w", addr, err)
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			c.log.Error("regtest rpc server stopped", "err", err)
		}
	}()
	return s, nil
}

// URL returns the server's address with credentials, http://user:pass@127.0.0.1:port.
func (s *Server) URL() string {
	u := url.URL{Scheme: "http", User: url.UserPassword(s.user, s.pass), Host: s.ln.Addr().String()}
	return u.String()
}

// Addr returns host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Credentials returns the basic-auth user and password.
func (s *Server) Credentials() (user, pass string) { return s.user, s.pass }

// Close stops the server, waiting for running requests up to ctx's deadline.
func (s *Server) Close(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
	}
	<-s.done
	return err
}

// ServeHTTP answers one JSON-RPC request or a batch, as btcd: HTTP 200 with the error in the
// body for RPC errors, 401 for bad credentials.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "JSON-RPC needs POST", http.StatusMethodNotAllowed)
		return
	}
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(s.user))&subtle.ConstantTimeCompare([]byte(pass), []byte(s.pass)) != 1 {
		w.Header().Set("WWW-Authenticate", `Basic realm="hwbridge regtest RPC"`)
		http.Error(w, "401 Unauthorized.", http.StatusUnauthorized)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil || len(body) > maxRequestBody {
		http.Error(w, "request body too large or unreadable", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var reqs []json.RawMessage
		if err := json.Unmarshal(trimmed, &reqs); err != nil {
			w.Write(s.errorReply(nil, btcjson.ErrRPCParse.Code, "Failed to parse request: "+err.Error()))
			return
		}
		replies := make([]json.RawMessage, 0, len(reqs))
		for _, raw := range reqs {
			if reply := s.handle(r.Context(), raw); reply != nil {
				replies = append(replies, reply)
			}
		}
		out, _ := json.Marshal(replies)
		w.Write(out)
		return
	}
	if reply := s.handle(r.Context(), trimmed); reply != nil {
		w.Write(reply)
	}
}

func (s *Server) errorReply(id any, code btcjson.RPCErrorCode, msg string) []byte {
	out, _ := btcjson.MarshalResponse(btcjson.RpcVersion1, id, nil, btcjson.NewRPCError(code, msg))
	return out
}

// handle answers one request object; nil for a notification (no id).
func (s *Server) handle(ctx context.Context, raw []byte) []byte {
	var req btcjson.Request
	if err := json.Unmarshal(raw, &req); err != nil {
		return s.errorReply(nil, btcjson.ErrRPCParse.Code, "Failed to parse request: "+err.Error())
	}
	version := req.Jsonrpc
	if version == "" {
		version = btcjson.RpcVersion1
	}
	if req.ID == nil {
		return nil
	}
	if req.Method == "testmempoolaccept" && len(req.Params) == 1 {
		// btcd's command type needs maxfeerate; Bitcoin Core makes it optional.
		req.Params = append(req.Params, json.RawMessage("0"))
	}
	var result any
	var rpcErr *btcjson.RPCError
	cmd, err := btcjson.UnmarshalCmd(&req)
	switch {
	case err != nil:
		var jerr btcjson.Error
		if errors.As(err, &jerr) && jerr.ErrorCode == btcjson.ErrUnregisteredMethod {
			rpcErr = btcjson.ErrRPCMethodNotFound
		} else {
			rpcErr = btcjson.NewRPCError(btcjson.ErrRPCInvalidParams.Code, err.Error())
		}
	default:
		result, err = s.dispatch(ctx, req.Method, cmd)
		if err != nil {
			if !errors.As(err, &rpcErr) {
				rpcErr = btcjson.NewRPCError(btcjson.ErrRPCMisc, err.Error())
			}
			result = nil
		}
	}
	out, err := btcjson.MarshalResponse(version, req.ID, result, rpcErr)
	if err != nil {
		out = s.errorReply(req.ID, btcjson.ErrRPCInternal.Code, "marshal reply: "+err.Error())
	}
	return out
}

// Methods lists the served JSON-RPC methods.
func Methods() []string {
	return []string{
		"estimatefee", "estimatesmartfee", "generate", "generatetoaddress", "getbestblock",
		"getbestblockhash", "getblock", "getblockchaininfo", "getblockcount", "getblockhash",
		"getblockheader", "getinfo", "getmempoolinfo", "getrawmempool", "getrawtransaction",
		"gettxout", "gettxspendingprevout", "ping", "searchrawtransactions", "sendrawtransaction",
		"testmempoolaccept", "version",
	}
}

func (s *Server) dispatch(ctx context.Context, method string, cmd any) (any, error) {
	c := s.c
	switch cmd := cmd.(type) {
	case *btcjson.GetBlockCountCmd:
		return int64(c.Height()), nil
	case *btcjson.GetBestBlockHashCmd:
		return c.chain.BestSnapshot().Hash.String(), nil
	case *btcjson.GetBestBlockCmd:
		best := c.chain.BestSnapshot()
		return &btcjson.GetBestBlockResult{Hash: best.Hash.String(), Height: best.Height}, nil
	case *btcjson.GetBlockHashCmd:
		h, err := c.chain.BlockHashByHeight(int32(cmd.Index))
		if err != nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCOutOfRange, "Block number out of range")
		}
		return h.String(), nil
	case *btcjson.GetBlockCmd:
		return s.getBlock(cmd)
	case *btcjson.GetBlockHeaderCmd:
		return s.getBlockHeader(cmd)
	case *btcjson.GetBlockChainInfoCmd:
		return s.getBlockChainInfo()
	case *btcjson.GetInfoCmd:
		best := c.chain.BestSnapshot()
		return &btcjson.InfoChainResult{
			Version: 240200, ProtocolVersion: int32(wire.ProtocolVersion), Blocks: best.Height,
			Difficulty: difficulty(best.Bits, c.params), RelayFee: mempool.DefaultMinRelayTxFee.ToBTC(),
		}, nil
	case *btcjson.VersionCmd:
		return map[string]btcjson.VersionResult{"btcdjsonrpcapi": {VersionString: "1.3.0", Major: 1, Minor: 3}}, nil
	case *btcjson.PingCmd:
		return nil, nil
	case *btcjson.GetRawTransactionCmd:
		return s.getRawTransaction(cmd)
	case *btcjson.GetTxOutCmd:
		return s.getTxOut(cmd)
	case *btcjson.SendRawTransactionCmd:
		return s.sendRawTransaction(cmd)
	case *btcjson.TestMempoolAcceptCmd:
		return s.testMempoolAccept(cmd)
	case *btcjson.GetRawMempoolCmd:
		if cmd.Verbose != nil && *cmd.Verbose {
			return c.pool.RawMempoolVerbose(), nil
		}
		descs := c.pool.TxDescs()
		out := make([]string, len(descs))
		for i, d := range descs {
			out[i] = d.Tx.Hash().String()
		}
		return out, nil
	case *btcjson.GetMempoolInfoCmd:
		descs := c.pool.TxDescs()
		var n int64
		for _, d := range descs {
			n += int64(d.Tx.MsgTx().SerializeSize())
		}
		return &btcjson.GetMempoolInfoResult{Size: int64(len(descs)), Bytes: n}, nil
	case *btcjson.GetTxSpendingPrevOutCmd:
		out := make([]*btcjson.GetTxSpendingPrevOutResult, 0, len(cmd.Outputs))
		for _, o := range cmd.Outputs {
			h, err := chainhash.NewHashFromStr(o.Txid)
			if err != nil {
				return nil, decodeHexError(o.Txid)
			}
			res := &btcjson.GetTxSpendingPrevOutResult{Txid: o.Txid, Vout: o.Vout}
			if tx := c.pool.CheckSpend(wire.OutPoint{Hash: *h, Index: o.Vout}); tx != nil {
				res.SpendingTxid = tx.Hash().String()
			}
			out = append(out, res)
		}
		return out, nil
	case *btcjson.EstimateFeeCmd:
		if cmd.NumBlocks <= 0 {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInvalidParameter, "Parameter NumBlocks must be positive")
		}
		rate, err := c.fees.EstimateFee(uint32(cmd.NumBlocks))
		if err != nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCMisc, err.Error())
		}
		return float64(rate), nil
	case *btcjson.EstimateSmartFeeCmd:
		// Bitcoin Core's shape over btcd's estimator: feerate in BTC/kvB, or errors.
		res := &btcjson.EstimateSmartFeeResult{Blocks: cmd.ConfTarget}
		if cmd.ConfTarget <= 0 {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInvalidParameter, "Invalid conf_target")
		}
		rate, err := c.fees.EstimateFee(uint32(cmd.ConfTarget))
		if err != nil || rate <= 0 {
			res.Errors = []string{"Insufficient data or no feerate found"}
			return res, nil
		}
		f := float64(rate)
		res.FeeRate = &f
		return res, nil
	case *btcjson.GenerateCmd:
		if s.miningAddr == nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "No payment addresses specified via --miningaddr")
		}
		return s.generate(ctx, int64(cmd.NumBlocks), s.miningAddr)
	case *btcjson.GenerateToAddressCmd:
		addr, err := btcutil.DecodeAddress(cmd.Address, c.params)
		if err != nil || !addr.IsForNet(c.params) {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInvalidAddressOrKey, "Error: Invalid address")
		}
		return s.generate(ctx, cmd.NumBlocks, addr)
	case *btcjson.SearchRawTransactionsCmd:
		return s.searchRawTransactions(cmd)
	}
	return nil, btcjson.NewRPCError(btcjson.ErrRPCMethodNotFound.Code, "Method not found: "+method)
}

func decodeHexError(got string) *btcjson.RPCError {
	return btcjson.NewRPCError(btcjson.ErrRPCDecodeHexString, fmt.Sprintf("Argument must be hexadecimal string (not %q)", got))
}

func noTxInfoError(h *chainhash.Hash) *btcjson.RPCError {
	return btcjson.NewRPCError(btcjson.ErrRPCNoTxInfo, fmt.Sprintf("No information available about transaction %v", h))
}

func (s *Server) generate(ctx context.Context, n int64, addr btcutil.Address) (any, error) {
	if n <= 0 {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Please request a nonzero number of blocks to generate.")
	}
	if n > 10000 {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCInvalidParameter, "at most 10000 blocks per call")
	}
	hashes, err := s.c.Mine(ctx, int(n), addr)
	if err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, err.Error())
	}
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = h.String()
	}
	return out, nil
}

// difficulty is btcd's getDifficultyRatio.
func difficulty(bits uint32, params *chaincfg.Params) float64 {
	max := blockchain.CompactToBig(params.PowLimitBits)
	target := blockchain.CompactToBig(bits)
	d := new(big.Rat).SetFrac(max, target)
	f, err := strconv.ParseFloat(d.FloatString(8), 64)
	if err != nil {
		return 0
	}
	return f
}

func (s *Server) getBlock(cmd *btcjson.GetBlockCmd) (any, error) {
	c := s.c
	hash, err := chainhash.NewHashFromStr(cmd.Hash)
	if err != nil {
		return nil, decodeHexError(cmd.Hash)
	}
	var raw []byte
	err = c.db.View(func(tx database.Tx) error {
		var err error
		raw, err = tx.FetchBlock(hash)
		return err
	})
	if err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCBlockNotFound, "Block not found")
	}
	verbosity := 1
	if cmd.Verbosity != nil {
		verbosity = *cmd.Verbosity
	}
	if verbosity == 0 {
		return hex.EncodeToString(raw), nil
	}
	blk, err := btcutil.NewBlockFromBytes(raw)
	if err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Failed to deserialize block: "+err.Error())
	}
	height, err := c.chain.BlockHeightByHash(hash)
	if err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCBlockNotFound, "Block not found")
	}
	blk.SetHeight(height)
	best := c.chain.BestSnapshot()
	next := ""
	if height < best.Height {
		if nh, err := c.chain.BlockHashByHeight(height + 1); err == nil {
			next = nh.String()
		}
	}
	hdr := &blk.MsgBlock().Header
	reply := btcjson.GetBlockVerboseResult{
		Hash:          cmd.Hash,
		Version:       hdr.Version,
		VersionHex:    fmt.Sprintf("%08x", hdr.Version),
		MerkleRoot:    hdr.MerkleRoot.String(),
		PreviousHash:  hdr.PrevBlock.String(),
		Nonce:         hdr.Nonce,
		Time:          hdr.Timestamp.Unix(),
		Confirmations: int64(1 + best.Height - height),
		Height:        int64(height),
		Size:          int32(len(raw)),
		StrippedSize:  int32(blk.MsgBlock().SerializeSizeStripped()),
		Weight:        int32(blockchain.GetBlockWeight(blk)),
		Bits:          strconv.FormatInt(int64(hdr.Bits), 16),
		Difficulty:    difficulty(hdr.Bits, c.params),
		NextHash:      next,
	}
	if verbosity == 1 {
		for _, tx := range blk.Transactions() {
			reply.Tx = append(reply.Tx, tx.Hash().String())
		}
		return reply, nil
	}
	// As btcd: verbosity 2 puts the decoded transactions under "rawtx".
	reply.RawTx = make([]btcjson.TxRawResult, 0, len(blk.Transactions()))
	for _, tx := range blk.Transactions() {
		r, err := s.txRawResult(tx.MsgTx(), hdr, hash, height, best.Height)
		if err != nil {
			return nil, err
		}
		reply.RawTx = append(reply.RawTx, *r)
	}
	return reply, nil
}

func (s *Server) getBlockHeader(cmd *btcjson.GetBlockHeaderCmd) (any, error) {
	c := s.c
	hash, err := chainhash.NewHashFromStr(cmd.Hash)
	if err != nil {
		return nil, decodeHexError(cmd.Hash)
	}
	hdr, err := c.chain.HeaderByHash(hash)
	if err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCBlockNotFound, "Block not found")
	}
	if cmd.Verbose != nil && !*cmd.Verbose {
		var buf bytes.Buffer
		if err := hdr.Serialize(&buf); err != nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, err.Error())
		}
		return hex.EncodeToString(buf.Bytes()), nil
	}
	height, err := c.chain.BlockHeightByHash(hash)
	if err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCBlockNotFound, "Block not found")
	}
	best := c.chain.BestSnapshot()
	next := ""
	if height < best.Height {
		if nh, err := c.chain.BlockHashByHeight(height + 1); err == nil {
			next = nh.String()
		}
	}
	return btcjson.GetBlockHeaderVerboseResult{
		Hash:          cmd.Hash,
		Confirmations: int64(1 + best.Height - height),
		Height:        height,
		Version:       hdr.Version,
		VersionHex:    fmt.Sprintf("%08x", hdr.Version),
		MerkleRoot:    hdr.MerkleRoot.String(),
		NextHash:      next,
		PreviousHash:  hdr.PrevBlock.String(),
		Nonce:         uint64(hdr.Nonce),
		Time:          hdr.Timestamp.Unix(),
		Bits:          strconv.FormatInt(int64(hdr.Bits), 16),
		Difficulty:    difficulty(hdr.Bits, c.params),
	}, nil
}

func (s *Server) getBlockChainInfo() (any, error) {
	c := s.c
	best := c.chain.BestSnapshot()
	info := &btcjson.GetBlockChainInfoResult{
		Chain:         c.params.Name,
		Blocks:        best.Height,
		Headers:       best.Height,
		BestBlockHash: best.Hash.String(),
		Difficulty:    difficulty(best.Bits, c.params),
		MedianTime:    best.MedianTime.Unix(),
		SoftForks:     &btcjson.SoftForks{Bip9SoftForks: map[string]*btcjson.Bip9SoftForkDescription{}},
	}
	type reject = struct {
		Status bool `json:"status"`
	}
	info.SoftForks.SoftForks = []*btcjson.SoftForkDescription{
		{ID: "bip34", Version: 2, Reject: reject{Status: best.Height >= c.params.BIP0034Height}},
		{ID: "bip66", Version: 3, Reject: reject{Status: best.Height >= c.params.BIP0066Height}},
		{ID: "bip65", Version: 4, Reject: reject{Status: best.Height >= c.params.BIP0065Height}},
	}
	names := map[int]string{
		chaincfg.DeploymentTestDummy:              "dummy",
		chaincfg.DeploymentTestDummyMinActivation: "dummy-min-activation",
		chaincfg.DeploymentCSV:                    "csv",
		chaincfg.DeploymentSegwit:                 "segwit",
		chaincfg.DeploymentTaproot:                "taproot",
	}
	for id, d := range c.params.Deployments {
		name, ok := names[id]
		if !ok {
			continue
		}
		state, err := c.chain.ThresholdState(uint32(id))
		if err != nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Failed to obtain deployment status: "+err.Error())
		}
		var start, end int64
		if st, ok := d.DeploymentStarter.(*chaincfg.MedianTimeDeploymentStarter); ok {
			start = st.StartTime().Unix()
		}
		if en, ok := d.DeploymentEnder.(*chaincfg.MedianTimeDeploymentEnder); ok {
			end = en.EndTime().Unix()
		}
		info.SoftForks.Bip9SoftForks[name] = &btcjson.Bip9SoftForkDescription{
			Status:              thresholdName(state),
			Bit:                 d.BitNumber,
			StartTime2:          start,
			Timeout:             end,
			MinActivationHeight: int32(d.MinActivationHeight),
		}
	}
	return info, nil
}

func thresholdName(s blockchain.ThresholdState) string {
	switch s {
	case blockchain.ThresholdDefined:
		return "defined"
	case blockchain.ThresholdStarted:
		return "started"
	case blockchain.ThresholdLockedIn:
		return "lockedin"
	case blockchain.ThresholdActive:
		return "active"
	case blockchain.ThresholdFailed:
		return "failed"
	}
	return strings.ToLower(s.String())
}

// txRawResult is btcd's createTxRawResult; hdr nil for a mempool transaction.
func (s *Server) txRawResult(mtx *wire.MsgTx, hdr *wire.BlockHeader, blkHash *chainhash.Hash, blkHeight, best int32) (*btcjson.TxRawResult, error) {
	var buf bytes.Buffer
	if err := mtx.Serialize(&buf); err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, err.Error())
	}
	tx := btcutil.NewTx(mtx)
	r := &btcjson.TxRawResult{
		Hex:      hex.EncodeToString(buf.Bytes()),
		Txid:     mtx.TxHash().String(),
		Hash:     mtx.WitnessHash().String(),
		Size:     int32(mtx.SerializeSize()),
		Vsize:    int32(mempool.GetTxVirtualSize(tx)),
		Weight:   int32(blockchain.GetTransactionWeight(tx)),
		Vin:      vinList(mtx),
		Vout:     voutList(mtx, s.c.params, nil),
		Version:  uint32(mtx.Version),
		LockTime: mtx.LockTime,
	}
	if hdr != nil {
		r.Time = hdr.Timestamp.Unix()
		r.Blocktime = hdr.Timestamp.Unix()
		r.BlockHash = blkHash.String()
		r.Confirmations = uint64(1 + best - blkHeight)
	}
	return r, nil
}

func vinList(mtx *wire.MsgTx) []btcjson.Vin {
	out := make([]btcjson.Vin, len(mtx.TxIn))
	if blockchain.IsCoinBaseTx(mtx) {
		in := mtx.TxIn[0]
		out[0].Coinbase = hex.EncodeToString(in.SignatureScript)
		out[0].Sequence = in.Sequence
		out[0].Witness = in.Witness.ToHexStrings()
		return out
	}
	for i, in := range mtx.TxIn {
		asm, _ := txscript.DisasmString(in.SignatureScript)
		out[i].Txid = in.PreviousOutPoint.Hash.String()
		out[i].Vout = in.PreviousOutPoint.Index
		out[i].Sequence = in.Sequence
		out[i].ScriptSig = &btcjson.ScriptSig{Asm: asm, Hex: hex.EncodeToString(in.SignatureScript)}
		if mtx.HasWitness() {
			out[i].Witness = in.Witness.ToHexStrings()
		}
	}
	return out
}

func scriptPubKey(pk []byte, params *chaincfg.Params) (btcjson.ScriptPubKeyResult, []string) {
	asm, _ := txscript.DisasmString(pk)
	class, addrs, reqSigs, _ := txscript.ExtractPkScriptAddrs(pk, params)
	enc := make([]string, len(addrs))
	for i, a := range addrs {
		enc[i] = a.EncodeAddress()
	}
	r := btcjson.ScriptPubKeyResult{Asm: asm, Hex: hex.EncodeToString(pk), ReqSigs: int32(reqSigs), Type: class.String(), Addresses: enc}
	if len(enc) == 1 && reqSigs <= 1 {
		r.Address = enc[0]
	}
	return r, enc
}

func voutList(mtx *wire.MsgTx, params *chaincfg.Params, filter map[string]struct{}) []btcjson.Vout {
	out := make([]btcjson.Vout, 0, len(mtx.TxOut))
	for i, o := range mtx.TxOut {
		spk, addrs := scriptPubKey(o.PkScript, params)
		pass := len(filter) == 0
		for _, a := range addrs {
			if _, ok := filter[a]; ok {
				pass = true
			}
		}
		if !pass {
			continue
		}
		out = append(out, btcjson.Vout{
			N:     uint32(i),
			Value: btcutil.Amount(o.Value).ToBTC(),
			ScriptPubKey: btcjson.ScriptPubKeyResult{
				Asm: spk.Asm, Hex: spk.Hex, ReqSigs: spk.ReqSigs, Type: spk.Type,
				Address: spk.Address, Addresses: spk.Addresses,
			},
		})
	}
	return out
}

// findTx looks a transaction up in the mempool, then in the transaction index. blkHash is
// nil for a mempool transaction.
func (s *Server) findTx(h *chainhash.Hash) (mtx *wire.MsgTx, raw []byte, blkHash *chainhash.Hash, err error) {
	c := s.c
	if tx, err := c.pool.FetchTransaction(h); err == nil {
		return tx.MsgTx(), nil, nil, nil
	}
	region, err := c.txIndex.TxBlockRegion(h)
	if err != nil {
		return nil, nil, nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Failed to retrieve transaction location: "+err.Error())
	}
	if region == nil {
		return nil, nil, nil, noTxInfoError(h)
	}
	err = c.db.View(func(tx database.Tx) error {
		var err error
		raw, err = tx.FetchBlockRegion(region)
		return err
	})
	if err != nil {
		return nil, nil, nil, noTxInfoError(h)
	}
	mtx = new(wire.MsgTx)
	if err := mtx.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, nil, nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Failed to deserialize transaction: "+err.Error())
	}
	return mtx, raw, region.Hash, nil
}

func (s *Server) getRawTransaction(cmd *btcjson.GetRawTransactionCmd) (any, error) {
	h, err := chainhash.NewHashFromStr(cmd.Txid)
	if err != nil {
		return nil, decodeHexError(cmd.Txid)
	}
	mtx, raw, blkHash, err := s.findTx(h)
	if err != nil {
		return nil, err
	}
	verbose := cmd.Verbose != nil && *cmd.Verbose != 0
	if !verbose {
		if raw == nil {
			var buf bytes.Buffer
			if err := mtx.Serialize(&buf); err != nil {
				return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, err.Error())
			}
			raw = buf.Bytes()
		}
		return hex.EncodeToString(raw), nil
	}
	var hdr *wire.BlockHeader
	var height, best int32
	if blkHash != nil {
		hh, err := s.c.chain.HeaderByHash(blkHash)
		if err != nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Failed to fetch block header: "+err.Error())
		}
		hdr = &hh
		if height, err = s.c.chain.BlockHeightByHash(blkHash); err != nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Failed to retrieve block height: "+err.Error())
		}
		best = s.c.Height()
	}
	r, err := s.txRawResult(mtx, hdr, blkHash, height, best)
	if err != nil {
		return nil, err
	}
	return *r, nil
}

func (s *Server) getTxOut(cmd *btcjson.GetTxOutCmd) (any, error) {
	c := s.c
	h, err := chainhash.NewHashFromStr(cmd.Txid)
	if err != nil {
		return nil, decodeHexError(cmd.Txid)
	}
	includeMempool := cmd.IncludeMempool == nil || *cmd.IncludeMempool
	var (
		confirmations int64
		value         int64
		pkScript      []byte
		coinbase      bool
	)
	best := c.chain.BestSnapshot()
	if tx, err := c.pool.FetchTransaction(h); includeMempool && err == nil {
		mtx := tx.MsgTx()
		if int(cmd.Vout) >= len(mtx.TxOut) {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInvalidTxVout, "Output index number (vout) does not exist for transaction.")
		}
		value, pkScript, coinbase = mtx.TxOut[cmd.Vout].Value, mtx.TxOut[cmd.Vout].PkScript, blockchain.IsCoinBaseTx(mtx)
	} else {
		entry, err := c.chain.FetchUtxoEntry(wire.OutPoint{Hash: *h, Index: cmd.Vout})
		if err != nil {
			return nil, noTxInfoError(h)
		}
		if entry == nil || entry.IsSpent() {
			return nil, nil
		}
		confirmations = int64(1 + best.Height - entry.BlockHeight())
		value, pkScript, coinbase = entry.Amount(), entry.PkScript(), entry.IsCoinBase()
	}
	spk, _ := scriptPubKey(pkScript, c.params)
	return &btcjson.GetTxOutResult{
		BestBlock:     best.Hash.String(),
		Confirmations: confirmations,
		Value:         btcutil.Amount(value).ToBTC(),
		ScriptPubKey:  spk,
		Coinbase:      coinbase,
	}, nil
}

func decodeTx(hexStr string) (*wire.MsgTx, *btcjson.RPCError) {
	if len(hexStr)%2 != 0 {
		hexStr = "0" + hexStr
	}
	b, err := hex.DecodeString(hexStr)
	if err != nil {
		return nil, decodeHexError(hexStr)
	}
	var mtx wire.MsgTx
	if err := mtx.Deserialize(bytes.NewReader(b)); err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCDeserialization, "TX decode failed: "+err.Error())
	}
	return &mtx, nil
}

func (s *Server) sendRawTransaction(cmd *btcjson.SendRawTransactionCmd) (any, error) {
	mtx, rerr := decodeTx(cmd.HexTx)
	if rerr != nil {
		return nil, rerr
	}
	h, err := s.c.SubmitTx(mtx)
	if err != nil {
		// btcd's mapping of mempool rule errors onto RPC codes.
		code := btcjson.ErrRPCTxError
		var ruleErr mempool.RuleError
		if errors.As(err, &ruleErr) {
			var txErr mempool.TxRuleError
			if errors.As(ruleErr.Err, &txErr) {
				desc := strings.ToLower(txErr.Description)
				switch {
				case strings.Contains(desc, "orphan transaction"):
					code = btcjson.ErrRPCTxError
				case strings.Contains(desc, "transaction already exists"):
					code = btcjson.ErrRPCTxAlreadyInChain
				default:
					code = btcjson.ErrRPCTxRejected
				}
			}
		}
		msg := err.Error()
		if errors.As(err, &ruleErr) {
			msg = ruleErr.Error()
		}
		return nil, btcjson.NewRPCError(code, "TX rejected: "+msg)
	}
	return h.String(), nil
}

// defaultMaxFeeRate is btcd's testmempoolaccept default, BTC/kvB.
const defaultMaxFeeRate = 0.1

func (s *Server) testMempoolAccept(cmd *btcjson.TestMempoolAcceptCmd) (any, error) {
	txs := make([]*btcutil.Tx, 0, len(cmd.RawTxns))
	for _, raw := range cmd.RawTxns {
		b, err := hex.DecodeString(raw)
		if err != nil {
			return nil, decodeHexError(raw)
		}
		tx, err := btcutil.NewTxFromBytes(b)
		if err != nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCDeserialization, "TX decode failed: "+err.Error())
		}
		txs = append(txs, tx)
	}
	maxRate := cmd.MaxFeeRate
	if maxRate == 0 {
		maxRate = defaultMaxFeeRate
	}
	out := make([]*btcjson.TestMempoolAcceptResult, 0, len(txs))
	for _, tx := range txs {
		item := &btcjson.TestMempoolAcceptResult{Txid: tx.Hash().String(), Wtxid: tx.WitnessHash().String()}
		res, err := s.c.pool.CheckMempoolAcceptance(tx)
		switch {
		case err != nil:
			item.RejectReason = err.Error()
		case res.MissingParents != nil:
			item.RejectReason = "missing-inputs"
		default:
			rate := (res.TxFee * 1000 / btcutil.Amount(res.TxSize)).ToBTC()
			if rate > maxRate {
				item.RejectReason = "max-fee-exceeded"
				break
			}
			item.Allowed = true
			item.Vsize = int32(res.TxSize)
			item.Fees = &btcjson.TestMempoolAcceptFees{Base: res.TxFee.ToBTC(), EffectiveFeeRate: rate}
		}
		out = append(out, item)
	}
	return out, nil
}

func (s *Server) searchRawTransactions(cmd *btcjson.SearchRawTransactionsCmd) (any, error) {
	c := s.c
	vinExtra := cmd.VinExtra != nil && *cmd.VinExtra != 0
	addr, err := btcutil.DecodeAddress(cmd.Address, c.params)
	if err != nil {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCInvalidAddressOrKey, "Invalid address or key: "+err.Error())
	}
	count := 100
	if cmd.Count != nil {
		count = max(*cmd.Count, 1)
		if *cmd.Count == 0 {
			return nil, nil
		}
	}
	skip := 0
	if cmd.Skip != nil {
		skip = max(*cmd.Skip, 0)
	}
	reverse := cmd.Reverse != nil && *cmd.Reverse
	type found struct {
		mtx     *wire.MsgTx
		raw     []byte
		blkHash *chainhash.Hash
	}
	var txs []found
	skipped := 0
	mempoolTxs := func() {
		unconf := c.addrIndex.UnconfirmedTxnsForAddress(addr)
		for _, tx := range unconf {
			if skipped < skip {
				skipped++
				continue
			}
			if len(txs) >= count {
				return
			}
			txs = append(txs, found{mtx: tx.MsgTx()})
		}
	}
	if reverse {
		mempoolTxs()
	}
	if len(txs) < count {
		err = c.db.View(func(dbTx database.Tx) error {
			regions, dbSkipped, err := c.addrIndex.TxRegionsForAddress(dbTx, addr, uint32(skip-skipped), uint32(count-len(txs)), reverse)
			if err != nil {
				return err
			}
			raws, err := dbTx.FetchBlockRegions(regions)
			if err != nil {
				return err
			}
			for i, raw := range raws {
				mtx := new(wire.MsgTx)
				if err := mtx.Deserialize(bytes.NewReader(raw)); err != nil {
					return err
				}
				txs = append(txs, found{mtx: mtx, raw: raw, blkHash: regions[i].Hash})
			}
			skipped += int(dbSkipped)
			return nil
		})
		if err != nil {
			return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Failed to load address index entries: "+err.Error())
		}
	}
	if !reverse && len(txs) < count {
		mempoolTxs()
	}
	if len(txs) == 0 {
		return nil, btcjson.NewRPCError(btcjson.ErrRPCNoTxInfo, "No information available about address")
	}
	hexes := make([]string, len(txs))
	for i, f := range txs {
		if f.raw == nil {
			var buf bytes.Buffer
			if err := f.mtx.Serialize(&buf); err != nil {
				return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, err.Error())
			}
			f.raw = buf.Bytes()
		}
		hexes[i] = hex.EncodeToString(f.raw)
	}
	if cmd.Verbose != nil && *cmd.Verbose == 0 {
		return hexes, nil
	}
	filter := map[string]struct{}{}
	if cmd.FilterAddrs != nil {
		for _, a := range *cmd.FilterAddrs {
			filter[a] = struct{}{}
		}
	}
	best := c.Height()
	out := make([]btcjson.SearchRawTransactionsResult, len(txs))
	for i, f := range txs {
		r := &out[i]
		r.Hex = hexes[i]
		r.Txid = f.mtx.TxHash().String()
		// As btcd v0.24.2: "hash", "size", "vsize" and "weight" are left empty here.
		vin, err := s.vinListPrevOut(f.mtx, vinExtra, filter)
		if err != nil {
			return nil, err
		}
		r.Vin = vin
		r.Vout = voutList(f.mtx, c.params, filter)
		r.Version = f.mtx.Version
		r.LockTime = f.mtx.LockTime
		if f.blkHash != nil {
			hdr, err := c.chain.HeaderByHash(f.blkHash)
			if err != nil {
				return nil, btcjson.NewRPCError(btcjson.ErrRPCBlockNotFound, "Block not found")
			}
			height, err := c.chain.BlockHeightByHash(f.blkHash)
			if err != nil {
				return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, "Failed to obtain block height: "+err.Error())
			}
			r.Time = hdr.Timestamp.Unix()
			r.Blocktime = hdr.Timestamp.Unix()
			r.BlockHash = f.blkHash.String()
			r.Confirmations = uint64(1 + best - height)
		}
	}
	return out, nil
}

// vinListPrevOut is btcd's createVinListPrevOut.
func (s *Server) vinListPrevOut(mtx *wire.MsgTx, vinExtra bool, filter map[string]struct{}) ([]btcjson.VinPrevOut, error) {
	if blockchain.IsCoinBaseTx(mtx) {
		if len(filter) != 0 {
			return nil, nil
		}
		in := mtx.TxIn[0]
		return []btcjson.VinPrevOut{{Coinbase: hex.EncodeToString(in.SignatureScript), Sequence: in.Sequence}}, nil
	}
	var prev map[wire.OutPoint]*wire.TxOut
	if vinExtra || len(filter) > 0 {
		prev = make(map[wire.OutPoint]*wire.TxOut, len(mtx.TxIn))
		for _, in := range mtx.TxIn {
			op := in.PreviousOutPoint
			ptx, _, _, err := s.findTx(&op.Hash)
			if err != nil {
				return nil, err
			}
			if int(op.Index) >= len(ptx.TxOut) {
				return nil, btcjson.NewRPCError(btcjson.ErrRPCInternal.Code, fmt.Sprintf("unable to find output %v referenced from transaction %s", op, mtx.TxHash()))
			}
			prev[op] = ptx.TxOut[op.Index]
		}
	}
	out := make([]btcjson.VinPrevOut, 0, len(mtx.TxIn))
	for _, in := range mtx.TxIn {
		asm, _ := txscript.DisasmString(in.SignatureScript)
		op := in.PreviousOutPoint
		e := btcjson.VinPrevOut{
			Txid: op.Hash.String(), Vout: op.Index, Sequence: in.Sequence,
			ScriptSig: &btcjson.ScriptSig{Asm: asm, Hex: hex.EncodeToString(in.SignatureScript)},
		}
		if len(in.Witness) != 0 {
			e.Witness = in.Witness.ToHexStrings()
		}
		pass := len(filter) == 0
		if pass {
			out = append(out, e)
		}
		po, ok := prev[op]
		if !ok {
			continue
		}
		_, addrs := scriptPubKey(po.PkScript, s.c.params)
		for _, a := range addrs {
			if _, ok := filter[a]; ok {
				pass = true
			}
		}
		if !pass {
			continue
		}
		if len(filter) != 0 {
			out = append(out, e)
		}
		if vinExtra {
			out[len(out)-1].PrevOut = &btcjson.PrevOut{Addresses: addrs, Value: btcutil.Amount(po.Value).ToBTC()}
		}
	}
	return out, nil
}

package emulator

import (
	"context"
	"fmt"
	"net"
	"sync"
)

// ServeConns accepts connections on ln and runs serve for each on its own goroutine until
// ctx or life (the device's own lifetime: its Close) ends; it closes ln and waits for the
// connections' goroutines before it returns. name prefixes its errors.
func ServeConns(ctx, life context.Context, ln net.Listener, name string, serve func(context.Context, net.Conn)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(life, cancel)
	defer stop()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: accept: %w", name, err)
		}
		conns.Go(func() { serve(ctx, c) })
	}
}

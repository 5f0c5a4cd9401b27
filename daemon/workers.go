package daemon

import (
	"context"
	"fmt"
	"runtime/debug"
)

// workers runs request handlers on long-lived goroutines. go-ethereum's rpc server starts
// a goroutine per request; a new goroutine's stack starts small (2–8 KiB) and a handler
// that reaches a device (JSON decoding, the hub, the driver, protobuf, the link) grows it
// several times, each time copying it and walking every frame: ≈10% of a read call's CPU
// (pprof: runtime.newstack under BenchmarkDaemonLatency). A worker's stack stays grown
// between requests. Hand-written: the standard library has no worker pool.
type workers struct {
	idle chan chan func() // parked workers, at most cap(idle)
	stop context.Context  // ends the parked workers (the daemon's lifetime)
}

func newWorkers(stop context.Context, max int) *workers {
	return &workers{idle: make(chan chan func(), max), stop: stop}
}

// run calls fn on a worker and returns once it has returned; a panic in fn is raised again
// in the caller (the rpc server recovers a handler's panic, a worker could not).
func (w *workers) run(fn func()) {
	var in chan func()
	select {
	case in = <-w.idle:
	default:
		in = make(chan func())
		go w.work(in)
	}
	var panicked any
	var stack []byte
	done := make(chan struct{})
	job := func() {
		defer close(done)
		defer func() {
			if panicked = recover(); panicked != nil {
				stack = debug.Stack()
			}
		}()
		fn()
	}
	select {
	case in <- job:
	case <-w.stop.Done(): // the worker may have ended: run it here
		job()
	}
	<-done
	if panicked != nil {
		panic(fmt.Sprintf("%v\n(on a handler worker)\n%s", panicked, stack))
	}
}

func (w *workers) work(in chan func()) {
	for {
		select {
		case fn := <-in:
			fn()
		case <-w.stop.Done():
			return
		}
		select {
		case w.idle <- in:
		default:
			return // enough parked workers
		}
	}
}

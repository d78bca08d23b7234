package local

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"
)

// endpoint is one region's Managed HSM endpoint: the Key Vault REST handler
// on a loopback HTTPS listener. Stopping it closes the listener and every
// connection; starting it again listens on the same address.
type endpoint struct {
	region  string
	handler http.Handler
	cert    tls.Certificate

	mu      sync.Mutex
	addr    string // 127.0.0.1:port, fixed after the first start
	srv     *http.Server
	serving chan struct{} // closed when the serving goroutine returns
}

func (ep *endpoint) start() error {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.srv != nil {
		return nil
	}
	addr := ep.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("endpoint %s: listen %s: %w", ep.region, addr, err)
	}
	ep.addr = ln.Addr().String()
	srv := &http.Server{
		Handler:           ep.handler,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{ep.cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		// Cut links and stopped proxies close connections mid-handshake:
		// that is the point, not something to log.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the listener failed; stop() still works
		}
	}()
	ep.srv, ep.serving = srv, done
	return nil
}

// stop closes the listener and every connection and waits for the server
// to return. Idempotent.
func (ep *endpoint) stop() {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if ep.srv == nil {
		return
	}
	_ = ep.srv.Close()
	<-ep.serving
	ep.srv, ep.serving = nil, nil
}

func (ep *endpoint) address() string {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.addr
}

func (ep *endpoint) up() bool {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	return ep.srv != nil
}

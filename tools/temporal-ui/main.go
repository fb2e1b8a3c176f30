// Command temporal-ui serves the Temporal Web UI in front of a Temporal frontend: the
// same UI server the CLI embeds in its dev server, pointed at the real server that
// `make prod-local` runs (the compose stack runs the temporalio/ui image instead).
package main

import (
	"flag"
	"log"
	"os"
	"os/signal"
	"syscall"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uiserveroptions "github.com/temporalio/ui-server/v2/server/server_options"
)

func main() {
	address := flag.String("address", "127.0.0.1:7233", "Temporal frontend gRPC address")
	host := flag.String("ip", "127.0.0.1", "address the UI listens on")
	port := flag.Int("port", 8233, "port the UI listens on")
	namespace := flag.String("namespace", "default", "namespace the UI opens")
	codec := flag.String("codec-endpoint", "", "codec server the browser asks to decode payloads (empty: none)")
	flag.Parse()

	srv := uiserver.NewServer(uiserveroptions.WithConfigProvider(&uiconfig.Config{
		Host:                *host,
		Port:                *port,
		TemporalGRPCAddress: *address,
		EnableUI:            true,
		DefaultNamespace:    *namespace,
		Codec:               uiconfig.Codec{Endpoint: *codec},
		CORS:                uiconfig.CORS{CookieInsecure: true},
		HideLogs:            true,
	}))
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		srv.Stop()
	}()
	if err := srv.Start(); err != nil {
		log.Fatalf("temporal-ui: %v", err)
	}
}

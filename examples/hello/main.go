// Command hello is the example service Gantry builds, tests and deploys: a
// tiny HTTP server that says which version it is.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func handler(greeting, version string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s from hello %s\n", greeting, version)
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, version)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	return mux
}

func main() {
	addr := flag.String("addr", "127.0.0.1:"+envOr("PORT", "8080"), "listen address")
	printVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *printVersion {
		fmt.Println(version)
		return
	}
	log.Printf("hello %s listening on %s", version, *addr)
	log.Fatal(http.ListenAndServe(*addr, handler(envOr("GREETING", "hello"), version)))
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// Package deploy holds the deployment checks: its tests load the repository's
// docker-compose.yml with the Compose Specification loader and read the Dockerfile, so a
// broken stack (a missing dependency, an unknown environment variable, a secret written
// into the file) fails `go test` on machines without a Docker engine. It is a module of
// its own (`cd deploy && go test ./...`, run by `make test`) so that the service's
// go.mod, and its Docker build, do not carry the Compose loader.
package deploy

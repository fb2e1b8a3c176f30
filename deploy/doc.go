// Package deploy holds the deployment checks: its tests load the repository's
// docker-compose.yml with the Compose Specification loader and read the Dockerfile, so a
// broken stack (a missing dependency, an unknown environment variable, a secret written
// into the file) fails `go test` on machines without a Docker engine.
package deploy

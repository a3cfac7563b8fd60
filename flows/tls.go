package flows

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSSource makes the TLS configuration of one connection attempt. The
// Client calls it before every attempt, so that certificates renewed in a
// mounted Secret are picked up at the next reconnect.
type TLSSource func() (*tls.Config, error)

// TLSFiles reads the CA certificate, the client certificate and its key
// from files (flows.tls.caFile, certFile, keyFile) at every attempt.
func TLSFiles(caFile, certFile, keyFile string) TLSSource {
	return func() (*tls.Config, error) {
		ca, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading the CA certificate (flows.tls.caFile): %w", err)
		}
		cert, err := os.ReadFile(certFile)
		if err != nil {
			return nil, fmt.Errorf("reading the client certificate (flows.tls.certFile): %w", err)
		}
		key, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("reading the client key (flows.tls.keyFile): %w", err)
		}
		return mutualTLS(ca, cert, key)
	}
}

// TLSPEM uses PEM-encoded certificates and key held in memory, such as
// the data of a Secret read from the API server.
func TLSPEM(ca, cert, key []byte) TLSSource {
	return func() (*tls.Config, error) { return mutualTLS(ca, cert, key) }
}

// mutualTLS is the client side of mutual TLS: Goldmane's certificate must
// be signed by ca, and calico-pni shows cert. Goldmane refuses clients
// without a certificate its CA signed (goldmane/pkg/daemon: a mutual TLS
// server configuration).
func mutualTLS(ca, cert, key []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, errors.New("the CA certificate holds no PEM certificate")
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("the client certificate and key: %w", err)
	}
	return &tls.Config{
		RootCAs: pool,
		// Show the certificate even when Goldmane asks for another CA's:
		// its refusal then says "unknown certificate authority", where a
		// client that stays silent would hear "certificate required".
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil },
		MinVersion:           tls.VersionTLS12,
	}, nil
}

// Package testbed starts a real kube-apiserver and etcd with Calico's own
// CRDs installed, for calico-pni's tests, demo and benchmarks. The binaries
// come from the tools module (make tools) and the CRDs from the Go module
// github.com/projectcalico/calico (make crds); both land in bin/.
package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// Options says which Calico APIs the API server serves.
type Options struct {
	// CalicoV1 installs Calico's crd.projectcalico.org/v1 CRDs.
	CalicoV1 bool
	// CalicoV3 installs projectcalico.org/v3 CRDs made from them: the group
	// that Calico's API server (or, from 3.32, its native CRDs) serves.
	CalicoV3 bool
	// CalicoVersion, when set, is written to ClusterInformation "default"
	// as calico/node would.
	CalicoVersion string
	// CalicoTiers adds what Calico 3.29 brought to its open-source CRDs:
	// the Tier CRD of testdata/crds and spec.tier on policies.
	CalicoTiers bool
	// CalicoStaged adds the StagedGlobalNetworkPolicy CRD of
	// testdata/crds (Calico 3.30), with the GlobalNetworkPolicy's schema.
	// It implies CalicoTiers.
	CalicoStaged bool
}

// Env is a running API server.
type Env struct {
	Config  *rest.Config
	Kube    kubernetes.Interface
	Dynamic dynamic.Interface
	env     *envtest.Environment
	certDir string
	// auditPath is the API server's audit log (see Wire).
	auditPath string
}

// Start starts etcd and kube-apiserver and installs the CRDs asked for.
// It fails with a message naming the missing piece and the make target that
// provides it.
func Start(opts Options) (*Env, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = bin
	}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			return nil, fmt.Errorf("the real-server tests need %s in %s (KUBEBUILDER_ASSETS): run `make tools`, or `make test`, which builds it", name, assets)
		}
	}
	crds, err := CalicoCRDs(opts)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDs:                     crds,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	// On loopback the endpoint reconciler refuses to run; calico-pni's
	// tests write the default/kubernetes EndpointSlice themselves.
	apiServer := env.ControlPlane.GetAPIServer()
	apiServer.Configure().Set("endpoint-reconciler-type", "none")
	// Open watches would otherwise hold a stopping API server for a minute.
	apiServer.Configure().Set("shutdown-watch-termination-grace-period", "2s")
	// A certificate directory of our own survives a stop, so that Restart
	// brings the API server back with the same certificates and clients
	// keep working, as after a real restart.
	certDir, err := os.MkdirTemp("", "calico-pni-apiserver-")
	if err != nil {
		return nil, err
	}
	apiServer.CertDir = certDir
	flags, auditPath, err := configureAudit(certDir)
	if err != nil {
		return nil, err
	}
	for k, v := range flags {
		apiServer.Configure().Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	e := &Env{Config: cfg, env: env, certDir: certDir, auditPath: auditPath}
	if e.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	if e.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, errors.Join(err, env.Stop())
	}
	if opts.CalicoVersion != "" {
		if err := e.SetCalicoVersion(context.Background(), opts); err != nil {
			return nil, errors.Join(err, env.Stop())
		}
	}
	return e, nil
}

// Stop stops the API server and etcd.
func (e *Env) Stop() error {
	err := e.env.Stop()
	return errors.Join(err, os.RemoveAll(e.certDir))
}

// StopAPIServer stops kube-apiserver only; etcd keeps the data.
func (e *Env) StopAPIServer() error { return e.env.ControlPlane.GetAPIServer().Stop() }

// StartAPIServer starts kube-apiserver again on the same address with the
// same certificates, after StopAPIServer.
func (e *Env) StartAPIServer() error { return e.env.ControlPlane.GetAPIServer().Start() }

// Environment returns the envtest environment, for adding users.
func (e *Env) Environment() *envtest.Environment { return e.env }

// CalicoCRDs returns the CRDs for the Calico APIs asked for.
func CalicoCRDs(opts Options) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	if !opts.CalicoV1 && !opts.CalicoV3 {
		return nil, nil
	}
	dir, err := crdDir()
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, entry := range entries {
		if strings.HasSuffix(entry.Name(), ".yaml") {
			files = append(files, filepath.Join(dir, entry.Name()))
		}
	}
	opts.CalicoTiers = opts.CalicoTiers || opts.CalicoStaged
	if opts.CalicoTiers {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		files = append(files, filepath.Join(root, "testdata", "crds", "crd.projectcalico.org_tiers.yaml"))
		if opts.CalicoStaged {
			files = append(files, filepath.Join(root, "testdata", "crds", "crd.projectcalico.org_stagedglobalnetworkpolicies.yaml"))
		}
	}
	var out []*apiextensionsv1.CustomResourceDefinition
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var crd apiextensionsv1.CustomResourceDefinition
		if err := yaml.Unmarshal(data, &crd); err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if opts.CalicoTiers {
			addTierField(&crd)
		}
		if opts.CalicoV1 {
			out = append(out, crd.DeepCopy())
		}
		if opts.CalicoV3 && servedByV3(crd.Spec.Names.Plural) {
			out = append(out, asV3(&crd))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no Calico CRDs in %s: run `make crds`", dir)
	}
	graftPolicySchema(out)
	return out, nil
}

// graftPolicySchema gives each staged policy CRD the spec schema of the
// GlobalNetworkPolicy CRD of its group, keeping its own stagedAction.
func graftPolicySchema(crds []*apiextensionsv1.CustomResourceDefinition) {
	gnp := map[string]*apiextensionsv1.CustomResourceDefinition{}
	for _, crd := range crds {
		if crd.Spec.Names.Plural == "globalnetworkpolicies" {
			gnp[crd.Spec.Group] = crd
		}
	}
	for _, crd := range crds {
		base := gnp[crd.Spec.Group]
		if crd.Spec.Names.Plural != "stagedglobalnetworkpolicies" || base == nil {
			continue
		}
		for i := range crd.Spec.Versions {
			own := crd.Spec.Versions[i].Schema.OpenAPIV3Schema.Properties["spec"].Properties["stagedAction"]
			schema := base.Spec.Versions[0].Schema.DeepCopy()
			spec := schema.OpenAPIV3Schema.Properties["spec"]
			spec.Properties["stagedAction"] = own
			schema.OpenAPIV3Schema.Properties["spec"] = spec
			crd.Spec.Versions[i].Schema = schema
		}
	}
}

// servedByV3 lists the v3 resources calico-pni's tests use.
func servedByV3(plural string) bool {
	switch plural {
	case "globalnetworkpolicies", "networkpolicies", "clusterinformations", "tiers", "stagedglobalnetworkpolicies":
		return true
	}
	return false
}

// addTierField gives the policy CRDs of Calico 3.28 the spec.tier field
// that Calico 3.29 added.
func addTierField(crd *apiextensionsv1.CustomResourceDefinition) {
	switch crd.Spec.Names.Plural {
	case "globalnetworkpolicies", "networkpolicies":
	default:
		return
	}
	for i := range crd.Spec.Versions {
		schema := crd.Spec.Versions[i].Schema
		if schema == nil || schema.OpenAPIV3Schema == nil {
			continue
		}
		spec, ok := schema.OpenAPIV3Schema.Properties["spec"]
		if !ok {
			continue
		}
		if spec.Properties == nil {
			spec.Properties = map[string]apiextensionsv1.JSONSchemaProps{}
		}
		spec.Properties["tier"] = apiextensionsv1.JSONSchemaProps{Type: "string", Description: "The tier the policy belongs to (Calico 3.29 and later)."}
		schema.OpenAPIV3Schema.Properties["spec"] = spec
	}
}

// asV3 turns a crd.projectcalico.org/v1 CRD into a projectcalico.org/v3
// one with the same schema. Calico's v3 API has the same spec fields; its
// API server also validates and defaults, which calico-pni does not rely on.
func asV3(v1 *apiextensionsv1.CustomResourceDefinition) *apiextensionsv1.CustomResourceDefinition {
	crd := v1.DeepCopy()
	crd.Spec.Group = "projectcalico.org"
	crd.Name = crd.Spec.Names.Plural + ".projectcalico.org"
	for i := range crd.Spec.Versions {
		crd.Spec.Versions[i].Name = "v3"
	}
	return crd
}

// RepoRoot finds the calico-pni checkout from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(data), "module github.com/calico-pni/calico-pni\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("cannot find the calico-pni checkout above the working directory")
		}
		dir = parent
	}
}

func binDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

func crdDir() (string, error) {
	if dir := os.Getenv("CALICO_CRDS"); dir != "" {
		return dir, nil
	}
	bin, err := binDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(bin, "crds")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("Calico's CRDs are not in %s: run `make crds`, or `make test`, which fetches them", dir)
	}
	return dir, nil
}

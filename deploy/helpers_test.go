package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/lispd/lispd/cachesync"
)

// binDir holds the lispd and lispctl binaries the tests build.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lispd-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// keepalived runs its scripts only from directories that no other
	// user may write to.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		// The daemons the tests ran in-process stopped all their goroutines.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var buildOnce sync.Map // command name -> *buildResult

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// binary builds cmd/<name> once and returns its path.
func binary(t *testing.T, name string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(name, &buildResult{})
	r := v.(*buildResult)
	r.once.Do(func() {
		r.path = filepath.Join(binDir, name)
		out, err := exec.Command("go", "build", "-o", r.path, "github.com/lispd/lispd/cmd/"+name).CombinedOutput()
		if err != nil {
			r.err = fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
	})
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.path
}

// readFile returns the content of a file of this folder.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// syncKeys makes a sync key pair per member in dir and returns, for each
// member name, its private key file and its public key.
func syncKeys(t *testing.T, dir string, names ...string) (files, public map[string]string) {
	t.Helper()
	files, public = map[string]string{}, map[string]string{}
	for _, n := range names {
		k, err := cachesync.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, n+"-sync.key")
		if err := cachesync.WritePrivateKey(f, k); err != nil {
			t.Fatal(err)
		}
		files[n] = f
		public[n] = cachesync.FormatPublicKey(cachesync.PublicKeyOf(k))
	}
	return files, public
}

// placeholderKey is what the getting-started xTR configs hold instead of
// the peer's public key, which the guide has the operator paste in.
func placeholderKey(member string) string {
	return "PUBLIC-KEY-OF-" + strings.ToUpper(member)
}

// fillIn returns an xTR config of the guide as the operator has it after
// following the guide: the peer's public key pasted in, and (for tests)
// the private key at keyFile. Other configs are returned unchanged.
func fillIn(text, keyFile string, public map[string]string) string {
	text = strings.ReplaceAll(text, `"/etc/lispd/sync.key"`, fmt.Sprintf("%q", keyFile))
	for member, key := range public {
		text = strings.ReplaceAll(text, placeholderKey(member), key)
	}
	return text
}

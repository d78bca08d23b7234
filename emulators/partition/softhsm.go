package partition

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleEnv names the environment variable that overrides where FindModule
// looks for the SoftHSM2 PKCS#11 module.
const ModuleEnv = "HSMLAB_SOFTHSM_MODULE"

// ConfEnv is the environment variable SoftHSM2 reads its configuration path
// from, during C_Initialize.
const ConfEnv = "SOFTHSM2_CONF"

// modulePaths are where Debian and Ubuntu install libsofthsm2.so.
var modulePaths = []string{
	"/usr/lib/softhsm/libsofthsm2.so",
	"/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
}

// FindModule returns the path of the SoftHSM2 PKCS#11 module: the file
// named by $HSMLAB_SOFTHSM_MODULE when it is set (an explicit setting wins,
// and a missing file is an error), else the first existing of
// /usr/lib/softhsm/libsofthsm2.so and
// /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so. When none exists the
// error wraps ErrSoftHSMNotFound and names the paths it tried.
func FindModule() (string, error) {
	if p := os.Getenv(ModuleEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("find softhsm module: $%s=%s: %v: %w", ModuleEnv, p, err, ErrSoftHSMNotFound)
		}
		return p, nil
	}
	for _, p := range modulePaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("find softhsm module: none of %s exists and $%s is not set: %w",
		strings.Join(modulePaths, ", "), ModuleEnv, ErrSoftHSMNotFound)
}

// SoftHSM is a private SoftHSM2 installation: a configuration file and a
// token directory under Dir, so tests and the local provider never touch the
// system's /etc/softhsm configuration.
//
// SoftHSM reads its configuration once per process, in C_Initialize, from
// $SOFTHSM2_CONF: one process uses one configuration. NewSoftHSM sets that
// variable; it must run before the first OpenModule of the module.
type SoftHSM struct {
	Dir        string // root directory
	ConfPath   string // Dir/softhsm2.conf
	TokenDir   string // Dir/tokens
	ModulePath string // the PKCS#11 module, from FindModule
	UtilPath   string // softhsm2-util
}

// NewSoftHSM creates dir (if needed), a token directory and a softhsm2.conf
// in it (file object store, log level ERROR, fixed slots), and points
// $SOFTHSM2_CONF at that file for this process. It fails with an error
// wrapping ErrSoftHSMNotFound when the module or softhsm2-util is missing.
func NewSoftHSM(dir string) (*SoftHSM, error) {
	mod, err := FindModule()
	if err != nil {
		return nil, fmt.Errorf("new softhsm: %w", err)
	}
	util, err := exec.LookPath("softhsm2-util")
	if err != nil {
		return nil, fmt.Errorf("new softhsm: softhsm2-util not in $PATH: %v: %w", err, ErrSoftHSMNotFound)
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("new softhsm: %w", err)
	}
	s := &SoftHSM{
		Dir:        dir,
		ConfPath:   filepath.Join(dir, "softhsm2.conf"),
		TokenDir:   filepath.Join(dir, "tokens"),
		ModulePath: mod,
		UtilPath:   util,
	}
	if err := os.MkdirAll(s.TokenDir, 0o700); err != nil {
		return nil, fmt.Errorf("new softhsm: %w", err)
	}
	conf := "# written by hsmlab emulators/partition\n" +
		"directories.tokendir = " + s.TokenDir + "\n" +
		"objectstore.backend = file\n" +
		"log.level = ERROR\n" +
		"slots.removable = false\n"
	if err := os.WriteFile(s.ConfPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("new softhsm: %w", err)
	}
	if err := os.Setenv(ConfEnv, s.ConfPath); err != nil {
		return nil, fmt.Errorf("new softhsm: %w", err)
	}
	return s, nil
}

// InitToken initialises a token labelled label (1 to 32 bytes) in a free
// slot with softhsm2-util. A Module already initialised does not see tokens
// created this way until all its references are closed and it is opened
// again: create tokens before OpenModule, or use Module.InitToken.
func (s *SoftHSM) InitToken(label, soPin, pin string) error {
	if label == "" || len(label) > 32 {
		return fmt.Errorf("init token %q: label must be 1 to 32 bytes: %w", label, ErrBadInput)
	}
	cmd := exec.Command(s.UtilPath, "--init-token", "--free", "--label", label, "--so-pin", soPin, "--pin", pin)
	cmd.Env = append(os.Environ(), ConfEnv+"="+s.ConfPath)
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("init token %q: softhsm2-util: %v: %s", label, err, strings.TrimSpace(string(out)))
		}
		return fmt.Errorf("init token %q: %w", label, err)
	}
	return nil
}

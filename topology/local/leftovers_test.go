package local_test

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// leftovers is what a process has open that a local environment could leave
// behind: its own listening TCP sockets, its child processes, and the
// entries of its temporary directory.
type leftovers struct {
	listeners []string // local addresses (hex, as /proc/net/tcp writes them)
	children  []string // "pid cmd"
	tmp       []string
}

// snapshot reads /proc: the listening sockets whose inodes this process
// holds (so other test processes' sockets do not count), the processes
// whose parent is this one, and the entries of dir.
func snapshot(t *testing.T, dir string) leftovers {
	t.Helper()
	var l leftovers
	inodes := map[string]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("read /proc/self/fd: %v", err)
	}
	for _, fd := range fds {
		link, err := os.Readlink("/proc/self/fd/" + fd.Name())
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 9 && fs[3] == "0A" && inodes[fs[9]] { // 0A: LISTEN
				l.listeners = append(l.listeners, fs[1])
			}
		}
	}
	self := strconv.Itoa(os.Getpid())
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", p.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		rest := s[strings.LastIndexByte(s, ')')+1:]
		fs := strings.Fields(rest)
		if len(fs) > 1 && fs[1] == self && fs[0] != "Z" {
			l.children = append(l.children, p.Name()+" "+s[strings.IndexByte(s, '(')+1:strings.LastIndexByte(s, ')')])
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		l.tmp = append(l.tmp, e.Name())
	}
	sort.Strings(l.listeners)
	return l
}

// listeningPort reports whether anything on the machine listens on port.
func listeningPort(port int) bool {
	hex := strings.ToUpper(strconv.FormatInt(int64(port), 16))
	for len(hex) < 4 {
		hex = "0" + hex
	}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) > 3 && fs[3] == "0A" && strings.HasSuffix(fs[1], ":"+hex) {
				return true
			}
		}
	}
	return false
}

// checkNoLeftovers compares a snapshot taken after Down with one taken
// before Up.
func checkNoLeftovers(t *testing.T, before leftovers, dir string) {
	t.Helper()
	after := snapshot(t, dir)
	was := map[string]bool{}
	for _, s := range before.listeners {
		was[s] = true
	}
	for _, s := range after.listeners {
		if !was[s] {
			t.Errorf("listening socket left behind: %s", s)
		}
	}
	if len(after.children) > len(before.children) {
		t.Errorf("processes left behind: %v (before: %v)", after.children, before.children)
	}
	if len(after.tmp) > len(before.tmp) {
		t.Errorf("temporary files left behind in %s: %v", dir, after.tmp)
	}
}

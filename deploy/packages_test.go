package deploy

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"fieldgate/cmd/fieldgate/daemontest"
	"fieldgate/cmd/fieldgate/testenv"
)

// TestDebianPackages builds the three .deb packages with deploy/package.sh,
// inspects them with dpkg-deb, and installs, removes and purges the amd64 one
// in a scratch root with dpkg --root (the maintainer scripts honour
// DPKG_ROOT), checking modes, owners, the user, the conffile and the unit's
// enablement on the way.
func TestDebianPackages(t *testing.T) {
	testenv.RequireLong(t, "building three packages")
	for _, tool := range []string{"dpkg", "dpkg-deb", "useradd", "go"} {
		testenv.Tool(t, tool)
	}
	testenv.Root(t, "installing into a scratch root")
	out := t.TempDir()
	cmd := exec.Command("bash", "package.sh", out, "armhf", "arm64", "amd64")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	built, err := cmd.Output() // the packages' paths; go's downloads and the tools' chatter go to stderr
	if err != nil {
		t.Fatalf("deploy/package.sh: %v\n%s%s", err, built, stderr.String())
	}
	debs := strings.Fields(string(built))
	if len(debs) != 3 {
		t.Fatalf("package.sh printed %q, want three packages", built)
	}
	wantMachine := map[string]elf.Machine{"armhf": elf.EM_ARM, "arm64": elf.EM_AARCH64, "amd64": elf.EM_X86_64}
	for _, deb := range debs {
		arch := strings.TrimSuffix(deb[strings.LastIndex(deb, "_")+1:], ".deb")
		t.Run(arch, func(t *testing.T) {
			info := dpkgDeb(t, "--info", deb)
			for _, want := range []string{"Package: fieldgate", "Architecture: " + arch, "conffiles", "preinst", "postinst", "prerm", "postrm"} {
				if !strings.Contains(info, want) {
					t.Errorf("dpkg-deb --info lacks %q:\n%s", want, info)
				}
			}
			if !regexp.MustCompile(`(?m)^ Version: [0-9]`).MatchString(info) {
				t.Errorf("the version must start with a digit:\n%s", info)
			}
			if conf := dpkgDeb(t, "--info", deb, "conffiles"); strings.TrimSpace(conf) != "/etc/fieldgate/config.yaml" {
				t.Error("config.yaml is not a conffile")
			}
			contents := dpkgDeb(t, "--contents", deb)
			for _, want := range []string{
				`-rwxr-xr-x root/root .* ./usr/bin/fieldgate`,
				`-rw-r--r-- root/root .* ./lib/systemd/system/fieldgate.service`,
				`-rw-r----- root/root .* ./etc/fieldgate/config.yaml`,
			} {
				if !regexp.MustCompile(want).MatchString(contents) {
					t.Errorf("contents lack %s:\n%s", want, contents)
				}
			}
			dir := t.TempDir()
			dpkgDeb(t, "-x", deb, dir)
			f, err := elf.Open(filepath.Join(dir, "usr/bin/fieldgate"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != wantMachine[arch] {
				t.Errorf("binary is for %v, want %v", f.Machine, wantMachine[arch])
			}
		})
	}
	installScratch(t, debs[2])
}

// operatorAddsDevice runs the installed binary as an operator would — a
// device added from the shell with the packaged configuration (its paths
// moved into the scratch root) — and then the daemon from the same
// configuration, which must know the device.
func operatorAddsDevice(t *testing.T, root string) {
	t.Helper()
	bin := filepath.Join(root, "usr/bin/fieldgate")
	conf := strings.ReplaceAll(readFile(t, filepath.Join(root, "etc/fieldgate/config.yaml")), "/var/lib/fieldgate", filepath.Join(root, "var/lib/fieldgate"))
	conf = strings.NewReplacer(`listen: ":1883"`, `listen: "127.0.0.1:0"`, `listen: ":8080"`, `listen: "127.0.0.1:0"`).Replace(conf)
	cfg := filepath.Join(root, "etc/fieldgate/scratch.yaml")
	if err := os.WriteFile(cfg, []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cfg)
	daemontest.AddDevice(t, bin, cfg, "esp-kitchen")
	d := daemontest.Start(t, bin, cfg)
	defer d.Terminate(t)
	api := &daemontest.API{TB: t, Base: d.API}
	if code, dev := api.Do("GET", "/api/v1/devices/esp-kitchen", nil); code != 200 || dev["id"] != "esp-kitchen" {
		t.Errorf("the daemon does not know the device the CLI added: %d %v", code, dev)
	}
}

func dpkgDeb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// installScratch installs, removes and purges deb in an empty root.
func installScratch(t *testing.T, deb string) {
	root := t.TempDir()
	for path, content := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n", "etc/group": "root:x:0:\n",
		"etc/shadow": "root:*::0:::::\n", "etc/gshadow": "root:*::\n",
		"var/lib/dpkg/status": "", "var/lib/dpkg/available": "",
	} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, path), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dpkg := func(args ...string) {
		t.Helper()
		out, err := exec.Command("dpkg", append([]string{"--root=" + root, "--force-script-chrootless"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("dpkg %v: %v\n%s", args, err, out)
		}
	}
	dpkg("-i", deb)
	passwd := readFile(t, filepath.Join(root, "etc/passwd"))
	group := readFile(t, filepath.Join(root, "etc/group"))
	if !regexp.MustCompile(`(?m)^fieldgate:x:\d+:\d+:[^:]*:/var/lib/fieldgate:/usr/sbin/nologin$`).MatchString(passwd) {
		t.Errorf("no fieldgate system user:\n%s", passwd)
	}
	if !regexp.MustCompile(`(?m)^i2c:x:\d+:fieldgate$`).MatchString(group) {
		t.Errorf("fieldgate is not in the i2c group:\n%s", group)
	}
	gid := regexp.MustCompile(`(?m)^fieldgate:x:(\d+):`).FindStringSubmatch(group)
	if gid == nil {
		t.Fatalf("no fieldgate group:\n%s", group)
	}
	for path, want := range map[string]struct {
		mode os.FileMode
		gid  string
	}{
		"usr/bin/fieldgate":                    {0o755, "0"},
		"lib/systemd/system/fieldgate.service": {0o644, "0"},
		"etc/fieldgate/config.yaml":            {0o640, gid[1]},
	} {
		fi, err := os.Stat(filepath.Join(root, path))
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if fi.Mode().Perm() != want.mode || st.Uid != 0 || strconv.Itoa(int(st.Gid)) != want.gid {
			t.Errorf("%s: %v uid %d gid %d, want %v uid 0 gid %s", path, fi.Mode().Perm(), st.Uid, st.Gid, want.mode, want.gid)
		}
	}
	wants := filepath.Join(root, "etc/systemd/system/multi-user.target.wants/fieldgate.service")
	if _, err := exec.LookPath("systemctl"); err == nil {
		if _, err := os.Lstat(wants); err != nil {
			t.Errorf("the service is not enabled: %v", err)
		}
	}
	// The shipped configuration is valid, and the management commands
	// (run by an operator with sudo, outside systemd) open the store the
	// service's StateDirectory holds: they once wrote to ./fieldgate-data.
	out, err := exec.Command(filepath.Join(root, "usr/bin/fieldgate"), "check-config", "-config", filepath.Join(root, "etc/fieldgate/config.yaml")).CombinedOutput()
	if err != nil {
		t.Errorf("the packaged config.yaml does not pass check-config: %v\n%s", err, out)
	}
	unit := readFile(t, filepath.Join(root, "lib/systemd/system/fieldgate.service"))
	state := regexp.MustCompile(`(?m)^StateDirectory=(\S+)$`).FindStringSubmatch(unit)
	if state == nil || !regexp.MustCompile(`(?m)^data_dir: /var/lib/`+regexp.QuoteMeta(state[1])+`$`).Match(out) {
		t.Errorf("the packaged config's data_dir is not the unit's StateDirectory %v:\n%s", state, out)
	}
	operatorAddsDevice(t, root)

	dpkg("-r", "fieldgate")
	if _, err := os.Stat(filepath.Join(root, "usr/bin/fieldgate")); err == nil {
		t.Error("remove left the binary")
	}
	if _, err := os.Stat(filepath.Join(root, "etc/fieldgate/config.yaml")); err != nil {
		t.Errorf("remove deleted the configuration: %v", err)
	}
	if _, err := os.Lstat(wants); err == nil {
		t.Error("remove left the service enabled")
	}
	dpkg("-P", "fieldgate")
	if _, err := os.Stat(filepath.Join(root, "etc/fieldgate")); err == nil {
		t.Error("purge left /etc/fieldgate")
	}
	if strings.Contains(readFile(t, filepath.Join(root, "etc/passwd")), "fieldgate:") {
		t.Error("purge left the fieldgate user")
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

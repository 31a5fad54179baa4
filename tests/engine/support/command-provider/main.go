// A STAND-IN for pulumi-resource-command (the Pulumi Command provider), for the real-engine test tier.
//
// The real provider (Go module github.com/pulumi/pulumi-command/provider) has no release of its own in
// the Go module proxy and Pulumi's download servers are unreachable here, so it cannot be built or
// downloaded. scripts/pulumi-toolchain.sh builds this program instead, against the pinned Pulumi SDK,
// and installs it as `resource command <pinned version>`, saying so loudly. It implements the part of
// the provider D8 Fleet uses, following the real provider's documented v1 behaviour:
//
//   - command:local:Command   create/update/delete run with `interpreter` (default /bin/sh -c) in `dir`
//     with the process environment plus `environment`; `stdin`; stdout/stderr outputs (one trailing
//     newline trimmed); PULUMI_COMMAND_STDOUT/STDERR of the previous run unless addPreviousOutputInEnv
//     is false; an update runs `update`, or `create` again when `update` is unset; `triggers` replace.
//   - command:remote:Command  the same over SSH (environment via session Setenv, which sshd drops
//     unless AcceptEnv allows it, exactly like the real provider).
//   - command:remote:CopyToRemote  a path-based FileAsset/FileArchive or a text asset copied to
//     `remotePath` with the real provider's file/directory rules; delete leaves the files; `triggers`
//     replace; an update copies again when the source hash or remotePath changed.
//
// Differences: files are streamed through `tar -x` / `cat` on the remote host instead of SFTP (the
// remote host needs a POSIX sh and tar); output is not streamed to the engine log while a command
// runs; assetPaths/archivePaths, connection.proxy and the Run/CopyFile resources are refused.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/blang/semver"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// version is stamped with -ldflags "-X main.version=..." to the @pulumi/command pin.
var version = "1.2.1"

const (
	localCommand  = "command:local:Command"
	remoteCommand = "command:remote:Command"
	copyToRemote  = "command:remote:CopyToRemote"
)

func main() {
	err := provider.Main("command", func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		ctx, cancel := context.WithCancel(context.Background())
		return plugin.NewProviderServer(&standin{ctx: ctx, cancel: cancel}), nil
	})
	if err != nil {
		cmdutil.ExitError(err.Error())
	}
}

type standin struct {
	plugin.UnimplementedProvider
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func (p *standin) GetPluginInfo(context.Context) (plugin.PluginInfo, error) {
	v, err := semver.ParseTolerant(version)
	if err != nil {
		return plugin.PluginInfo{}, err
	}
	return plugin.PluginInfo{Version: &v}, nil
}

func (p *standin) GetSchema(context.Context, plugin.GetSchemaRequest) (plugin.GetSchemaResponse, error) {
	return plugin.GetSchemaResponse{Schema: []byte(fmt.Sprintf(`{"name":"command","version":%q}`, version))}, nil
}

func (p *standin) CheckConfig(_ context.Context, req plugin.CheckConfigRequest) (plugin.CheckConfigResponse, error) {
	return plugin.CheckConfigResponse{Properties: req.News}, nil
}

func (p *standin) DiffConfig(context.Context, plugin.DiffConfigRequest) (plugin.DiffConfigResponse, error) {
	return plugin.DiffResult{Changes: plugin.DiffNone}, nil
}

func (p *standin) Configure(context.Context, plugin.ConfigureRequest) (plugin.ConfigureResponse, error) {
	return plugin.ConfigureResponse{}, nil
}

func (p *standin) SignalCancellation(context.Context) error {
	p.once.Do(p.cancel)
	return nil
}

// ---- property helpers -------------------------------------------------------------------------

// plain strips secret wrappers recursively (the engine re-applies secretness to outputs).
func plain(v resource.PropertyValue) resource.PropertyValue {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsArray():
		out := make([]resource.PropertyValue, len(v.ArrayValue()))
		for i, e := range v.ArrayValue() {
			out[i] = plain(e)
		}
		return resource.NewArrayProperty(out)
	case v.IsObject():
		out := resource.PropertyMap{}
		for k, e := range v.ObjectValue() {
			out[k] = plain(e)
		}
		return resource.NewObjectProperty(out)
	}
	return v
}

func str(m resource.PropertyMap, key string) (string, bool) {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return "", false
	}
	v = plain(v)
	if !v.IsString() {
		return "", false
	}
	return v.StringValue(), true
}

func strMap(m resource.PropertyMap, key string) map[string]string {
	out := map[string]string{}
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return out
	}
	v = plain(v)
	if !v.IsObject() {
		return out
	}
	for k, e := range v.ObjectValue() {
		if e.IsString() {
			out[string(k)] = e.StringValue()
		}
	}
	return out
}

func strList(m resource.PropertyMap, key string) []string {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return nil
	}
	v = plain(v)
	if !v.IsArray() {
		return nil
	}
	var out []string
	for _, e := range v.ArrayValue() {
		if e.IsString() {
			out = append(out, e.StringValue())
		}
	}
	return out
}

func boolOr(m resource.PropertyMap, key string, def bool) bool {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return def
	}
	v = plain(v)
	if !v.IsBool() {
		return def
	}
	return v.BoolValue()
}

func numOr(m resource.PropertyMap, key string, def float64) float64 {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return def
	}
	v = plain(v)
	if !v.IsNumber() {
		return def
	}
	return v.NumberValue()
}

func object(m resource.PropertyMap, key string) resource.PropertyMap {
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		return resource.PropertyMap{}
	}
	v = plain(v)
	if !v.IsObject() {
		return resource.PropertyMap{}
	}
	return v.ObjectValue()
}

func copyMap(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func withTimeout(ctx context.Context, seconds float64) (context.Context, context.CancelFunc) {
	if seconds > 0 {
		return context.WithTimeout(ctx, time.Duration(seconds*float64(time.Second)))
	}
	return context.WithCancel(ctx)
}

// ---- Check / Diff -----------------------------------------------------------------------------

func (p *standin) Check(_ context.Context, req plugin.CheckRequest) (plugin.CheckResponse, error) {
	news := copyMap(req.News)
	var failures []plugin.CheckFailure
	fail := func(prop, reason string) {
		failures = append(failures, plugin.CheckFailure{Property: resource.PropertyKey(prop), Reason: reason})
	}
	switch string(req.Type) {
	case localCommand:
		for _, k := range []string{"assetPaths", "archivePaths"} {
			if _, ok := news[resource.PropertyKey(k)]; ok {
				fail(k, k+" is not supported by the D8 stand-in command provider")
			}
		}
	case remoteCommand, copyToRemote:
		conn, ok := news["connection"]
		if !ok {
			fail("connection", "missing required property 'connection'")
			break
		}
		if conn.ContainsUnknowns() {
			break
		}
		c := plain(conn)
		if !c.IsObject() {
			fail("connection", "connection must be an object")
			break
		}
		cm := copyMap(c.ObjectValue())
		if _, ok := str(cm, "host"); !ok {
			fail("connection.host", "missing required property 'host'")
		}
		if _, ok := cm["proxy"]; ok {
			fail("connection.proxy", "connection.proxy is not supported by the D8 stand-in command provider")
		}
		// The real provider's schema defaults, so state looks the same.
		defaults := map[string]resource.PropertyValue{
			"port": resource.NewNumberProperty(22), "user": resource.NewStringProperty("root"),
			"dialErrorLimit": resource.NewNumberProperty(10), "perDialTimeout": resource.NewNumberProperty(15),
		}
		for k, d := range defaults {
			if _, ok := cm[resource.PropertyKey(k)]; !ok {
				cm[resource.PropertyKey(k)] = d
			}
		}
		// The real provider marks the whole connection secret.
		news["connection"] = resource.MakeSecret(resource.NewObjectProperty(cm))
		if string(req.Type) == copyToRemote {
			if _, ok := news["remotePath"]; !ok {
				fail("remotePath", "missing required property 'remotePath'")
			}
			src, ok := news["source"]
			if !ok {
				fail("source", "missing required property 'source'")
			} else if !src.ContainsUnknowns() {
				s := plain(src)
				switch {
				case s.IsAsset():
					if a := s.AssetValue(); !a.IsPath() && !a.IsText() {
						fail("source", "asset must be a path-based file asset or a text asset")
					}
				case s.IsArchive():
					if !s.ArchiveValue().IsPath() {
						fail("source", "archive must be a path to a file or directory")
					}
				default:
					fail("source", "source must be an asset or an archive")
				}
			}
		}
	default:
		return plugin.CheckResponse{}, fmt.Errorf("the D8 stand-in command provider does not implement %s", req.Type)
	}
	return plugin.CheckResponse{Properties: news, Failures: failures}, nil
}

func (p *standin) Diff(_ context.Context, req plugin.DiffRequest) (plugin.DiffResponse, error) {
	keys := map[resource.PropertyKey]bool{}
	for k := range req.OldInputs {
		keys[k] = true
	}
	for k := range req.NewInputs {
		keys[k] = true
	}
	var changed, replace []resource.PropertyKey
	detailed := map[string]plugin.PropertyDiff{}
	for k := range keys {
		if strings.HasPrefix(string(k), "__") {
			continue
		}
		oldV, hadOld := req.OldInputs[k]
		newV, hasNew := req.NewInputs[k]
		if hadOld && hasNew && !newV.ContainsUnknowns() && plain(oldV).DeepEquals(plain(newV)) {
			continue
		}
		kind := plugin.DiffUpdate
		switch {
		case !hadOld:
			kind = plugin.DiffAdd
		case !hasNew:
			kind = plugin.DiffDelete
		}
		if k == "triggers" {
			replace = append(replace, k)
			kind = map[plugin.DiffKind]plugin.DiffKind{
				plugin.DiffAdd: plugin.DiffAddReplace, plugin.DiffDelete: plugin.DiffDeleteReplace,
				plugin.DiffUpdate: plugin.DiffUpdateReplace,
			}[kind]
		}
		changed = append(changed, k)
		detailed[string(k)] = plugin.PropertyDiff{Kind: kind, InputDiff: true}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i] < changed[j] })
	if len(changed) == 0 {
		return plugin.DiffResult{Changes: plugin.DiffNone}, nil
	}
	return plugin.DiffResult{
		Changes: plugin.DiffSome, ChangedKeys: changed, ReplaceKeys: replace, DetailedDiff: detailed,
	}, nil
}

// ---- Create / Read / Update / Delete ----------------------------------------------------------

func uniqueID(prefix string) (string, error) {
	id, err := resource.NewUniqueHex(prefix, 8, 0)
	return id, err
}

func (p *standin) Create(ctx context.Context, req plugin.CreateRequest) (plugin.CreateResponse, error) {
	ctx, cancel := withTimeout(p.merge(ctx), req.Timeout)
	defer cancel()
	state := copyMap(req.Properties)
	switch string(req.Type) {
	case localCommand, remoteCommand:
		id, err := uniqueID(req.Name)
		if err != nil {
			return plugin.CreateResponse{}, err
		}
		if req.Preview {
			state["stdout"] = resource.MakeComputed(resource.NewStringProperty(""))
			state["stderr"] = resource.MakeComputed(resource.NewStringProperty(""))
			return plugin.CreateResponse{ID: resource.ID(id), Properties: state}, nil
		}
		state["stdout"], state["stderr"] = resource.NewStringProperty(""), resource.NewStringProperty("")
		if cmd, ok := str(req.Properties, "create"); ok {
			if err := p.runInto(ctx, string(req.Type), cmd, state); err != nil {
				return plugin.CreateResponse{}, err
			}
		}
		return plugin.CreateResponse{ID: resource.ID(id), Properties: state}, nil
	case copyToRemote:
		if req.Preview {
			return plugin.CreateResponse{ID: "", Properties: state}, nil
		}
		if err := copyToHost(ctx, req.Properties); err != nil {
			return plugin.CreateResponse{}, err
		}
		id, err := uniqueID("")
		if err != nil {
			return plugin.CreateResponse{}, err
		}
		return plugin.CreateResponse{ID: resource.ID(id), Properties: state}, nil
	}
	return plugin.CreateResponse{}, fmt.Errorf("the D8 stand-in command provider does not implement %s", req.Type)
}

func (p *standin) Read(_ context.Context, req plugin.ReadRequest) (plugin.ReadResponse, error) {
	// Like the real provider: what ran on a host cannot be read back, so state is kept as is.
	return plugin.ReadResponse{
		ReadResult: plugin.ReadResult{ID: req.ID, Inputs: req.Inputs, Outputs: req.State},
		Status:     resource.StatusOK,
	}, nil
}

func (p *standin) Update(ctx context.Context, req plugin.UpdateRequest) (plugin.UpdateResponse, error) {
	ctx, cancel := withTimeout(p.merge(ctx), req.Timeout)
	defer cancel()
	state := copyMap(req.NewInputs)
	switch string(req.Type) {
	case localCommand, remoteCommand:
		for _, k := range []resource.PropertyKey{"stdout", "stderr"} {
			if v, ok := req.OldOutputs[k]; ok {
				state[k] = v
			} else {
				state[k] = resource.NewStringProperty("")
			}
		}
		if req.Preview {
			return plugin.UpdateResponse{Properties: state}, nil
		}
		cmd, ok := str(req.NewInputs, "update")
		if !ok {
			cmd, ok = str(req.NewInputs, "create")
		}
		if ok {
			if err := p.runInto(ctx, string(req.Type), cmd, state); err != nil {
				return plugin.UpdateResponse{}, err
			}
		}
		return plugin.UpdateResponse{Properties: state}, nil
	case copyToRemote:
		if req.Preview {
			return plugin.UpdateResponse{Properties: state}, nil
		}
		oldPath, _ := str(req.OldOutputs, "remotePath")
		newPath, _ := str(req.NewInputs, "remotePath")
		if sourceHash(req.OldOutputs) != sourceHash(req.NewInputs) || oldPath != newPath {
			if err := copyToHost(ctx, req.NewInputs); err != nil {
				return plugin.UpdateResponse{}, err
			}
		}
		return plugin.UpdateResponse{Properties: state}, nil
	}
	return plugin.UpdateResponse{}, fmt.Errorf("the D8 stand-in command provider does not implement %s", req.Type)
}

func (p *standin) Delete(ctx context.Context, req plugin.DeleteRequest) (plugin.DeleteResponse, error) {
	ctx, cancel := withTimeout(p.merge(ctx), req.Timeout)
	defer cancel()
	switch string(req.Type) {
	case localCommand, remoteCommand:
		if cmd, ok := str(req.Outputs, "delete"); ok {
			state := copyMap(req.Outputs)
			if err := p.runInto(ctx, string(req.Type), cmd, state); err != nil {
				return plugin.DeleteResponse{}, err
			}
		}
	}
	return plugin.DeleteResponse{}, nil
}

// merge cancels ctx when the engine signals cancellation.
func (p *standin) merge(ctx context.Context) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-p.ctx.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx
}

// ---- running commands -------------------------------------------------------------------------

// runInto runs cmd for a local or remote Command with the resource's inputs in state, and stores
// stdout/stderr into state. PULUMI_COMMAND_STDOUT/STDERR come from the outputs already in state.
func (p *standin) runInto(ctx context.Context, typ, cmd string, state resource.PropertyMap) error {
	env := strMap(state, "environment")
	if boolOr(state, "addPreviousOutputInEnv", true) {
		if s, _ := str(state, "stdout"); s != "" {
			env["PULUMI_COMMAND_STDOUT"] = s
		}
		if s, _ := str(state, "stderr"); s != "" {
			env["PULUMI_COMMAND_STDERR"] = s
		}
	}
	stdin, _ := str(state, "stdin")
	var stdout, stderr string
	var err error
	if typ == localCommand {
		dir, _ := str(state, "dir")
		stdout, stderr, err = runLocal(ctx, strList(state, "interpreter"), cmd, dir, env, stdin)
	} else {
		stdout, stderr, err = runRemote(ctx, object(state, "connection"), cmd, env, stdin)
	}
	if err != nil {
		return err
	}
	state["stdout"] = resource.NewStringProperty(stdout)
	state["stderr"] = resource.NewStringProperty(stderr)
	return nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func runLocal(ctx context.Context, interpreter []string, command, dir string, env map[string]string,
	stdin string,
) (string, string, error) {
	args := interpreter
	if len(args) == 0 {
		args = []string{"/bin/sh", "-c"}
	}
	args = append(append([]string{}, args...), command)
	var stdout, stderr bytes.Buffer
	var both lockedBuffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout = io.MultiWriter(&stdout, &both)
	cmd.Stderr = io.MultiWriter(&stderr, &both)
	if dir != "" {
		cmd.Dir = dir
	}
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	// Own process group, so a timeout or cancellation kills everything the command started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", "", fmt.Errorf("%w: running %q", err, command)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		err = ctx.Err()
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, command, both.buf.String())
	}
	return strings.TrimSuffix(stdout.String(), "\n"), strings.TrimSuffix(stderr.String(), "\n"), nil
}

func dial(ctx context.Context, conn resource.PropertyMap) (*ssh.Client, error) {
	host, _ := str(conn, "host")
	port := int(numOr(conn, "port", 22))
	user, ok := str(conn, "user")
	if !ok {
		user = "root"
	}
	var auths []ssh.AuthMethod
	if key, ok := str(conn, "privateKey"); ok && key != "" {
		var signer ssh.Signer
		var err error
		if pass, ok := str(conn, "privateKeyPassword"); ok && pass != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(key), []byte(pass))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(key))
		}
		if err != nil {
			return nil, fmt.Errorf("could not parse connection.privateKey: %w", err)
		}
		auths = append(auths, ssh.PublicKeys(signer))
	}
	if pass, ok := str(conn, "password"); ok && pass != "" {
		auths = append(auths, ssh.Password(pass), ssh.KeyboardInteractive(
			func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pass
				}
				return answers, nil
			}))
	}
	sock, ok := str(conn, "agentSocketPath")
	if !ok {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			auths = append(auths, ssh.PublicKeysCallback(agent.NewClient(c).Signers))
		}
	}
	if len(auths) == 0 {
		return nil, errors.New("no SSH authentication: set connection.privateKey, connection.password or an SSH agent")
	}
	cfg := &ssh.ClientConfig{
		User: user, Auth: auths,
		// The real provider does not verify host keys either.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec
		Timeout:         time.Duration(numOr(conn, "perDialTimeout", 15)) * time.Second,
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	limit := int(numOr(conn, "dialErrorLimit", 10))
	var lastErr error
	for attempt := 1; limit <= 0 || attempt <= limit; attempt++ {
		client, err := ssh.Dial("tcp", addr, cfg)
		if err == nil {
			return client, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial %s: %w (last error: %v)", addr, ctx.Err(), lastErr)
		case <-time.After(time.Duration(min(attempt, 5)) * time.Second):
		}
	}
	return nil, fmt.Errorf("unable to connect to %s after %d attempts: %w", addr, limit, lastErr)
}

func runSession(ctx context.Context, client *ssh.Client, command string, env map[string]string,
	stdin io.Reader,
) (string, string, error) {
	session, err := client.NewSession()
	if err != nil {
		return "", "", err
	}
	defer session.Close()
	for k, v := range env {
		_ = session.Setenv(k, v) // refused unless sshd's AcceptEnv allows it, as with the real provider
	}
	session.Stdin = stdin
	var stdout, stderr bytes.Buffer
	var both lockedBuffer
	session.Stdout = io.MultiWriter(&stdout, &both)
	session.Stderr = io.MultiWriter(&stderr, &both)
	done := make(chan error, 1)
	go func() { done <- session.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGKILL)
		_ = client.Close()
		err = ctx.Err()
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, command, both.buf.String())
	}
	return strings.TrimSuffix(stdout.String(), "\n"), strings.TrimSuffix(stderr.String(), "\n"), nil
}

func runRemote(ctx context.Context, conn resource.PropertyMap, command string, env map[string]string,
	stdin string,
) (string, string, error) {
	client, err := dial(ctx, conn)
	if err != nil {
		return "", "", err
	}
	defer client.Close()
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	return runSession(ctx, client, command, env, in)
}

// ---- CopyToRemote -----------------------------------------------------------------------------

func sourceHash(m resource.PropertyMap) string {
	v, ok := m["source"]
	if !ok {
		return ""
	}
	v = plain(v)
	switch {
	case v.IsAsset():
		return v.AssetValue().Hash
	case v.IsArchive():
		return v.ArchiveValue().Hash
	}
	return ""
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// copyToHost follows the real provider's rules:
//
//	source | dest is a dir | dest missing        | dest is a file
//	dir    | dest/dir      | mkdir dest; dest/dir | error
//	dir/   | dest/*        | dest/*              | error
//	file   | dest/file     | dest                | dest (overwritten)
//	text   | error         | dest                | dest (overwritten)
func copyToHost(ctx context.Context, props resource.PropertyMap) error {
	dest, _ := str(props, "remotePath")
	src := plain(props["source"])
	client, err := dial(ctx, object(props, "connection"))
	if err != nil {
		return err
	}
	defer client.Close()
	q := shQuote(dest)
	run := func(script string, in io.Reader) error {
		_, _, err := runSession(ctx, client, "sh -c "+shQuote(script), nil, in)
		return err
	}
	if src.IsAsset() && src.AssetValue().IsText() {
		return run(`set -e; if [ -d `+q+` ]; then echo "remote path "`+q+`" is a directory; when using a text asset, remotePath must be a file path" >&2; exit 1; fi; cat > `+q,
			strings.NewReader(src.AssetValue().Text))
	}
	var local string
	if src.IsAsset() {
		local = src.AssetValue().Path
	} else {
		local = src.ArchiveValue().Path
	}
	info, err := os.Stat(local)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		f, err := os.Open(local)
		if err != nil {
			return err
		}
		defer f.Close()
		base := shQuote(filepath.Base(local))
		return run(`set -e; t=`+q+`; if [ -d "$t" ]; then t="$t"/`+base+`; fi; cat > "$t"`, f)
	}
	target := `"$d"`
	if !strings.HasSuffix(local, "/") {
		target = `"$d"/` + shQuote(filepath.Base(local))
	}
	script := `set -e; d=` + q + `
if [ -e "$d" ] && [ ! -d "$d" ]; then echo "remote path $d exists but is not a directory" >&2; exit 1; fi
[ -d "$d" ] || mkdir "$d"
t=` + target + `
if [ -e "$t" ] && [ ! -d "$t" ]; then echo "remote path $t exists but is not a directory" >&2; exit 1; fi
[ -d "$t" ] || mkdir "$t"
tar -x -o -f - -C "$t"`
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeTar(pw, local)) }()
	return run(script, pr)
}

// writeTar streams dir as a tar with SFTP-like modes (0644 files, 0755 dirs): the real provider
// does not preserve permission bits, so neither does the stand-in.
func writeTar(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		if d.IsDir() {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: rel + "/", Mode: 0o755, ModTime: time.Now()})
		}
		if !d.Type().IsRegular() {
			info, err := os.Stat(path) // follow symlinks like a file copy does
			if err != nil || !info.Mode().IsRegular() {
				return err
			}
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: rel, Mode: 0o644, Size: info.Size(), ModTime: info.ModTime(),
		}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

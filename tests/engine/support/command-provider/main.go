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
//   - command:remote:Command  the same over SSH (`environment` via session Setenv: a variable sshd
//     refuses fails the command, PULUMI_COMMAND_STDOUT/STDERR only warn, as in the real provider).
//   - command:remote:CopyToRemote  a path-based FileAsset/FileArchive or a text asset copied over
//     SFTP (the host's sshd needs an sftp subsystem, as for the real provider) to `remotePath` with
//     the real provider's file/directory rules; delete leaves the files; `triggers` replace; an
//     update copies again when the source hash or remotePath changed.
//   - connection.hostKey  parsed as an authorized_keys line and required of the server (a mismatch
//     fails the resource); without it any host key is accepted, like the real provider.
//   - `logging` (default stdoutAndStderr) streams the command's output to the engine log, line by
//     line, while it runs.
//
// Differences: assetPaths/archivePaths, connection.proxy and the Run/CopyFile resources are refused.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
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
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/pulumi/pulumi/pkg/v3/resource/provider"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
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
	err := provider.Main("command", func(host *provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		ctx, cancel := context.WithCancel(context.Background())
		return plugin.NewProviderServer(&standin{ctx: ctx, cancel: cancel, host: host}), nil
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
	host   *provider.HostClient
}

// logLines sends every line read from r to the engine log as an ephemeral status of urn, as the
// real provider's util.LogOutput does, and closes done at EOF.
func (p *standin) logLines(urn resource.URN, r io.Reader, done chan<- struct{}) {
	defer close(done)
	scanner := bufio.NewScanner(r)
	scanner.Buffer(make([]byte, 64*1024), 1024*1024)
	for scanner.Scan() {
		if p.host != nil {
			if err := p.host.LogStatus(context.Background(), diag.Info, urn, scanner.Text()); err != nil {
				log.Printf("cannot log to the engine: %v", err)
			}
		}
	}
	_, _ = io.Copy(io.Discard, r)
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
			if err := p.runInto(ctx, req.URN, string(req.Type), cmd, state); err != nil {
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
			if err := p.runInto(ctx, req.URN, string(req.Type), cmd, state); err != nil {
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
			if err := p.runInto(ctx, req.URN, string(req.Type), cmd, state); err != nil {
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
func (p *standin) runInto(ctx context.Context, urn resource.URN, typ, cmd string, state resource.PropertyMap) error {
	env := strMap(state, "environment")
	prev := map[string]string{}
	if boolOr(state, "addPreviousOutputInEnv", true) {
		if s, _ := str(state, "stdout"); s != "" {
			prev["PULUMI_COMMAND_STDOUT"] = s
		}
		if s, _ := str(state, "stderr"); s != "" {
			prev["PULUMI_COMMAND_STDERR"] = s
		}
	}
	stdin, _ := str(state, "stdin")
	logging, ok := str(state, "logging")
	if !ok {
		logging = "stdoutAndStderr"
	}
	// Like the real provider: one pipe to the engine log, fed by the streams `logging` names.
	pr, pw := io.Pipe()
	logged := make(chan struct{})
	go p.logLines(urn, pr, logged)
	out := streams{
		logStdout: logging == "stdout" || logging == "stdoutAndStderr",
		logStderr: logging == "stderr" || logging == "stdoutAndStderr",
		log:       &lockedWriter{w: pw},
	}
	var stdout, stderr string
	var err error
	if typ == localCommand {
		for k, v := range prev {
			env[k] = v
		}
		dir, _ := str(state, "dir")
		stdout, stderr, err = runLocal(ctx, strList(state, "interpreter"), cmd, dir, env, stdin, out)
	} else {
		stdout, stderr, err = p.runRemote(ctx, urn, object(state, "connection"), cmd, env, prev, stdin, out)
	}
	_ = pw.Close()
	<-logged
	if err != nil {
		return err
	}
	state["stdout"] = resource.NewStringProperty(stdout)
	state["stderr"] = resource.NewStringProperty(stderr)
	return nil
}

// streams says where a command's output goes besides its outputs.
type streams struct {
	logStdout, logStderr bool
	log                  io.Writer
}

func (s streams) writers(stdout, stderr, both io.Writer) (io.Writer, io.Writer) {
	o, e := []io.Writer{stdout, both}, []io.Writer{stderr, both}
	if s.logStdout {
		o = append(o, s.log)
	}
	if s.logStderr {
		e = append(e, s.log)
	}
	return io.MultiWriter(o...), io.MultiWriter(e...)
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

func runLocal(ctx context.Context, interpreter []string, command, dir string, env map[string]string,
	stdin string, out streams,
) (string, string, error) {
	args := interpreter
	if len(args) == 0 {
		args = []string{"/bin/sh", "-c"}
	}
	args = append(append([]string{}, args...), command)
	var stdout, stderr bytes.Buffer
	var bothBuf bytes.Buffer
	both := &lockedWriter{w: &bothBuf}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = out.writers(&stdout, &stderr, both)
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
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, command, bothBuf.String())
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
		// Without connection.hostKey the real provider accepts any host key too.
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), //nolint:gosec
		Timeout:         time.Duration(numOr(conn, "perDialTimeout", 15)) * time.Second,
	}
	if hk, ok := str(conn, "hostKey"); ok {
		// As the real provider: an authorized_keys line, the one key the server must present.
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hk))
		if err != nil {
			return nil, fmt.Errorf("failed to parse host key: %w", err)
		}
		cfg.HostKeyCallback = ssh.FixedHostKey(pub)
		cfg.HostKeyAlgorithms = []string{pub.Type()}
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

func runInSession(ctx context.Context, client *ssh.Client, session *ssh.Session, command string, stdin io.Reader,
	out streams,
) (string, string, error) {
	session.Stdin = stdin
	var stdout, stderr bytes.Buffer
	var bothBuf bytes.Buffer
	both := &lockedWriter{w: &bothBuf}
	session.Stdout, session.Stderr = out.writers(&stdout, &stderr, both)
	done := make(chan error, 1)
	go func() { done <- session.Run(command) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGKILL)
		_ = client.Close()
		err = ctx.Err()
	}
	if err != nil {
		return "", "", fmt.Errorf("%w: running %q:\n%s", err, command, bothBuf.String())
	}
	return strings.TrimSuffix(stdout.String(), "\n"), strings.TrimSuffix(stderr.String(), "\n"), nil
}

func (p *standin) runRemote(ctx context.Context, urn resource.URN, conn resource.PropertyMap, command string,
	env, prev map[string]string, stdin string, out streams,
) (string, string, error) {
	client, err := dial(ctx, conn)
	if err != nil {
		return "", "", err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return "", "", err
	}
	defer session.Close()
	// As the real provider: a refused `environment` variable fails the command (sshd's AcceptEnv
	// decides), a refused previous-output variable is a warning.
	for k, v := range env {
		if err := session.Setenv(k, v); err != nil {
			return "", "", fmt.Errorf("could not set environment variable %q: %w", k, err)
		}
	}
	for k, v := range prev {
		if err := session.Setenv(k, v); err != nil && p.host != nil {
			_ = p.host.Log(ctx, diag.Warning, urn, fmt.Sprintf("Unable to set '%s': sshd does not accept it (AcceptEnv)", k))
		}
	}
	var in io.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	return runInSession(ctx, client, session, command, in, out)
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

// copyToHost copies over SFTP with the real provider's rules:
//
//	source | dest is a dir | dest missing         | dest is a file
//	dir    | dest/dir      | mkdir -p dest; dest/dir | error
//	dir/   | dest/*        | mkdir -p dest; dest/*   | error
//	file   | dest/file     | dest (parents made)  | dest (overwritten)
//	text   | error         | dest (parents made)  | dest (overwritten)
//
// Files are created with the SFTP server's default mode (permission bits are not carried over).
func copyToHost(ctx context.Context, props resource.PropertyMap) error {
	dest, _ := str(props, "remotePath")
	src := plain(props["source"])
	client, err := dial(ctx, object(props, "connection"))
	if err != nil {
		return err
	}
	defer client.Close()
	sc, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true))
	if err != nil {
		return err
	}
	defer sc.Close()
	if src.IsAsset() && src.AssetValue().IsText() {
		return copyText(sc, src.AssetValue().Text, dest)
	}
	var local string
	if src.IsAsset() {
		local = src.AssetValue().Path
	} else {
		local = src.ArchiveValue().Path
	}
	return sftpCopy(sc, local, dest)
}

// remoteStat is nil, nil when path does not exist.
func remoteStat(sc *sftp.Client, path string) (fs.FileInfo, error) {
	info, err := sc.Stat(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("failed to stat remote path %s: %w", path, err)
	}
	return info, nil
}

func copyText(sc *sftp.Client, content, dest string) error {
	st, err := remoteStat(sc, dest)
	if err != nil {
		return err
	}
	if st != nil && st.IsDir() {
		return fmt.Errorf("remote path %s is a directory; when using a text asset, remotePath must be a file path", dest)
	}
	if err := sc.MkdirAll(filepath.Dir(dest)); err != nil {
		return fmt.Errorf("failed to create parent directories for %s: %w", dest, err)
	}
	f, err := sc.Create(dest)
	if err != nil {
		return fmt.Errorf("failed to create remote file %s: %w", dest, err)
	}
	defer f.Close()
	if _, err := f.Write([]byte(content)); err != nil {
		return fmt.Errorf("failed to write text content to remote path %s: %w", dest, err)
	}
	return nil
}

func sftpCopy(sc *sftp.Client, source, destPath string) error {
	info, err := os.Stat(source)
	if err != nil {
		return err
	}
	st, err := remoteStat(sc, destPath)
	if err != nil {
		return err
	}
	dest := destPath
	if !info.IsDir() {
		if st != nil && st.IsDir() {
			dest = filepath.Join(dest, filepath.Base(source))
		} else if st == nil {
			if err := sc.MkdirAll(filepath.Dir(dest)); err != nil {
				return fmt.Errorf("failed to create parent directories for %s: %w", dest, err)
			}
		}
		return copyFile(sc, source, dest)
	}
	if st == nil {
		if err := sc.MkdirAll(dest); err != nil {
			return fmt.Errorf("failed to create remote directory %s: %w", dest, err)
		}
	} else if !st.IsDir() {
		return fmt.Errorf("remote path %s exists but is not a directory", dest)
	}
	if !strings.HasSuffix(source, "/") {
		dest = filepath.Join(dest, filepath.Base(source))
		st, err := remoteStat(sc, dest)
		if err != nil {
			return err
		}
		if st != nil && !st.IsDir() {
			return fmt.Errorf("remote path %s exists but is not a directory", dest)
		}
		if st == nil {
			if err := sc.Mkdir(dest); err != nil {
				return fmt.Errorf("failed to create remote directory %s: %w", dest, err)
			}
		}
	}
	return copyDir(sc, source, dest)
}

func copyFile(sc *sftp.Client, src, dst string) error {
	local, err := os.Open(src)
	if err != nil {
		return err
	}
	defer local.Close()
	remote, err := sc.Create(dst)
	if err != nil {
		return fmt.Errorf("failed to create remote file %s: %w", dst, err)
	}
	defer remote.Close()
	if _, err := remote.ReadFrom(local); err != nil {
		return fmt.Errorf("failed to copy file %s to remote path %s: %w", src, dst, err)
	}
	return nil
}

func copyDir(sc *sftp.Client, src, dst string) error {
	return fs.WalkDir(os.DirFS(src), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		remote := filepath.Join(dst, path)
		if !d.IsDir() {
			return copyFile(sc, filepath.Join(src, path), remote)
		}
		st, err := remoteStat(sc, remote)
		if err != nil {
			return err
		}
		if st == nil {
			if err := sc.Mkdir(remote); err != nil {
				return fmt.Errorf("failed to create remote directory %s: %w", remote, err)
			}
		} else if !st.IsDir() {
			return fmt.Errorf("remote path %s exists but is not a directory", remote)
		}
		return nil
	})
}

package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/proto"

	"github.com/patchway/patchway/devidp"
	"github.com/patchway/patchway/fleetsim"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/scan"
	"github.com/patchway/patchway/workflows"
)

// verifiedPolicy is e2ePolicy's staged-path tuning with people proven
// by tokens of issuer only.
func verifiedPolicy(issuer string) string {
	return fmt.Sprintf(`{
  "plan": {"min_soak_hours": {"critical": {"lab": 0, "prodlike": 0}}},
  "oidc": {"issuer": %q}
}`, issuer)
}

// login signs user in at idp through `patchway login` (the device flow:
// the test reads the code the command prints and submits the
// verification form as the person would) and returns the session file.
func (e *e2e) login(ctx context.Context, idp *devidp.Issuer, user string) string {
	e.t.Helper()
	session := filepath.Join(e.dir, user+"-session.json")
	cmd := exec.CommandContext(ctx, e.bin, "login", "--issuer", idp.URL(), "--session", session)
	cmd.Env = e.env
	stderr, err := cmd.StderrPipe()
	if err != nil {
		e.t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	code := ""
	var said strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if m := regexp.MustCompile(`enter the code (\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			code = m[1]
			break
		}
	}
	if code == "" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		e.t.Fatalf("patchway login printed no code:\n%s", said.String())
	}
	if err := idp.Approve(code, user, user); err != nil {
		e.t.Fatalf("sign in %s: %v", user, err)
	}
	go func() { _, _ = bufio.NewReader(stderr).WriteTo(new(strings.Builder)) }()
	if err := cmd.Wait(); err != nil {
		e.t.Fatalf("patchway login: %v", err)
	}
	if !strings.Contains(stdout.String(), "signed in at "+idp.URL()+" as "+user) {
		e.t.Fatalf("patchway login said: %s", stdout.String())
	}
	return session
}

// jwtPattern finds JSON Web Tokens in raw history bytes.
var jwtPattern = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*`)

// historyTokens returns every JWT found in every history of the
// namespace (the rollout's runs and its batch children).
func (e *e2e) historyTokens(ctx context.Context) (tokens []string, events int) {
	e.t.Helper()
	seen := map[string]bool{}
	var next []byte
	for {
		resp, err := e.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: "default", NextPageToken: next})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, x := range resp.Executions {
			it := e.client.GetWorkflowHistory(ctx, x.Execution.WorkflowId, x.Execution.RunId, false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				if err != nil {
					e.t.Fatal(err)
				}
				events++
				raw, err := proto.Marshal(ev)
				if err != nil {
					e.t.Fatal(err)
				}
				for _, tok := range jwtPattern.FindAllString(string(raw), -1) {
					if !seen[tok] {
						seen[tok] = true
						tokens = append(tokens, tok)
					}
				}
			}
		}
		if next = resp.NextPageToken; len(next) == 0 {
			return tokens, events
		}
	}
}

func audienceOf(t *testing.T, token string) []string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Aud any `json:"aud"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	switch a := c.Aud.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return nil
}

// TestE2EVerifiedIdentityRefusesImpersonationAndLeavesNoUsableToken is
// the impersonation of the issue: a rollout filed by alice cannot be
// approved "as bob" by a typed name, through the CLI or by a raw update
// with Temporal's client; alice is refused her own gate with her own
// verified token; bob approves with his. Every history of the rollout is
// then searched for tokens: no login token is there, and each action
// token found, sent again, proves nothing.
func TestE2EVerifiedIdentityRefusesImpersonationAndLeavesNoUsableToken(t *testing.T) {
	idp, err := devidp.Start(devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	e := newE2E(t, e2eOptions{policyData: verifiedPolicy(idp.URL()), verifiedIdentity: true})
	_, inv := e.startFleetFrom(filepath.Join("testdata", "fleet-preflight.hcl"), fleetsim.Options{RebootDowntime: 200 * time.Millisecond})
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const id = "ms08-067"

	alice := e.login(ctx, idp, "alice")
	bob := e.login(ctx, idp, "bob")

	// A typed name files nothing.
	if r := e.cli(ctx, "submit", e.fastRollout(), "--inventory", inv, "--as", "alice"); r.code == 0 || !strings.Contains(r.stderr, "--as proves nothing") {
		t.Fatalf("submit --as: exit %d\n%s", r.code, r.stderr)
	}
	out := e.mustCLI(ctx, "submit", e.fastRollout(), "--inventory", inv, "--session", alice)
	if !strings.Contains(out, "by alice (verified by "+idp.URL()+")") {
		t.Fatalf("submit did not name the verified filer:\n%s", out)
	}
	p := e.waitFor(ctx, id, "the lab gate", 2*time.Minute, func(p workflows.Progress) bool { return p.WaitingGate != "" })
	gate := p.WaitingGate

	refusals := []struct {
		name string
		args []string
		want string
	}{
		{"--as without the insecure flag", []string{"approve", id, gate, "--as", "bob"}, "--as proves nothing"},
		{"a typed name the worker does not accept", []string{"approve", id, gate, "--insecure-dev-identity", "--as", "bob"}, "token_missing"},
		{"not signed in", []string{"approve", id, gate, "--session", filepath.Join(e.dir, "nobody.json")}, "you are not signed in"},
		{"alice's own gate", []string{"approve", id, gate, "--session", alice}, "four_eyes"},
	}
	for _, r := range refusals {
		res := e.cli(ctx, r.args...)
		if res.code == 0 || !strings.Contains(res.stderr, r.want) {
			t.Errorf("%s: exit %d, want refused with %q:\n%s%s", r.name, res.code, r.want, res.stdout, res.stderr)
		}
		t.Logf("%s: %s", r.name, strings.TrimSpace(res.stderr))
	}
	// Temporal's own client, with a typed user: the gates policy finds no token.
	_, err = workflows.SendUpdate(ctx, e.client, id, workflows.UpdateApprove, workflows.GateRequest{Gate: gate, User: "bob", Reason: "impersonation"})
	if refusal, ok := workflows.AsRefusal(err); !ok || !strings.Contains(refusal.Message, "token_missing") {
		t.Fatalf("a raw update as bob: %v", err)
	}

	out = e.mustCLI(ctx, "approve", id, gate, "--session", bob, "--reason", "lab healthy")
	if !strings.HasPrefix(out, "bob approved "+id) {
		t.Fatalf("bob's approval: %s", out)
	}
	p = e.waitFor(ctx, id, "past the lab gate", time.Minute, func(p workflows.Progress) bool { return p.WaitingGate != gate })
	var bobs *workflows.Record
	for i := range p.Decisions {
		if r := p.Decisions[i]; r.Kind == "approve" && r.Allow {
			bobs = &r
		}
	}
	if bobs == nil || bobs.Person == nil || !bobs.Person.Verified || bobs.Person.Subject != "bob" || bobs.Person.Issuer != idp.URL() ||
		bobs.Person.KeyID == "" || len(bobs.Person.TokenSHA256) != 64 {
		t.Fatalf("the approval does not record bob's verified claims, key id and token hash: %+v", bobs)
	}

	tokens, events := e.historyTokens(ctx)
	if len(tokens) == 0 {
		t.Fatal("no action token found in history: the search is broken (the approvals carried tokens)")
	}
	t.Logf("%d events searched, %d tokens found, each bound to one action", events, len(tokens))
	for _, tok := range tokens {
		aud := audienceOf(t, tok)
		if len(aud) != 1 || !strings.HasPrefix(aud[0], "urn:patchway:"+id+":") {
			t.Fatalf("a token in history is not bound to one action of the rollout (aud %v): a login token leaked", aud)
		}
		// Sent again, for the gate it names and for another action, it proves nothing.
		for _, req := range []struct {
			name string
			arg  any
		}{
			{workflows.UpdateApprove, workflows.GateRequest{Gate: p.WaitingGate, Token: tok, Reason: "replay"}},
			{workflows.UpdatePause, workflows.ControlRequest{Token: tok, Reason: "replay"}},
		} {
			if p.WaitingGate == "" && req.name == workflows.UpdateApprove {
				continue
			}
			_, err := workflows.SendUpdate(ctx, e.client, id, req.name, req.arg)
			refusal, ok := workflows.AsRefusal(err)
			if !ok {
				t.Fatalf("a token from history replayed as %s was not refused: %v", req.name, err)
			}
			if !strings.Contains(refusal.Message, "token_audience") && !strings.Contains(refusal.Message, "token_replayed") {
				t.Errorf("replayed as %s: refused for another reason: %s", req.name, refusal.Message)
			}
		}
	}
	// What-if over the verified decisions: the record keeps the proven
	// person, not the token, and the same policy decides the same.
	if r := e.cli(ctx, "policy", "whatif", id, "--policy-dir", filepath.Join(e.dir, "policy"), "--fail-on-change"); r.code != 0 {
		t.Errorf("what-if with the policy in force finds changes (exit %d):\n%s%s", r.code, r.stdout, r.stderr)
	}
	e.mustCLI(ctx, "abort", id, "--session", bob, "--reason", "test over")
}

// TestE2EVerifiedScanRequester: a scan, one-off or scheduled, is a
// person's action like any other: the gates policy's scan rule proves the
// token before any host, a person outside the group is refused with the
// reason (and no schedule is created), and the result names the person
// proven.
func TestE2EVerifiedScanRequester(t *testing.T) {
	idp, err := devidp.Start(devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = idp.Close() })
	e := newE2E(t, e2eOptions{policyData: verifiedPolicy(idp.URL()), verifiedIdentity: true})
	_, inv, _ := e.startScanFleet()
	e.startWorker()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	carol := e.login(ctx, idp, "carol")
	eve := e.login(ctx, idp, "eve") // an auditor: not in security-team
	scanCmd := []string{"scan", "--patch", "KB958644", "--rollouts", filepath.Join("..", "..", "examples", "ms08-067.hcl"), "--inventory", inv}

	for _, tt := range []struct{ name, want string }{
		{"one-off", "scan adhoc refused"},
		{"schedule", "scan nightly refused"},
	} {
		args := append(slices.Clone(scanCmd), "--id", "adhoc", "--session", eve)
		if tt.name == "schedule" {
			args = append(slices.Clone(scanCmd), "--id", "nightly", "--every", "24h", "--session", eve)
		}
		r := e.cli(ctx, args...)
		if r.code == 0 || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, "security-team") {
			t.Errorf("%s scan as eve: exit %d, want refused naming the group:\n%s%s", tt.name, r.code, r.stdout, r.stderr)
		}
		t.Logf("%s scan as eve: %s", tt.name, strings.TrimSpace(r.stderr))
	}
	if r := e.cli(ctx, "scan", "--id", "nightly", "--delete"); r.code == 0 {
		t.Errorf("eve's refused schedule exists:\n%s", r.stdout)
	}
	if r := e.cli(ctx, append(slices.Clone(scanCmd), "--id", "adhoc", "--as", "carol")...); r.code == 0 || !strings.Contains(r.stderr, "--as proves nothing") {
		t.Errorf("scan --as: exit %d\n%s", r.code, r.stderr)
	}

	verified := "requested by carol (verified by " + idp.URL() + ")"
	out := e.mustCLI(ctx, append(slices.Clone(scanCmd), "--id", "adhoc", "--session", carol)...)
	t.Logf("one-off scan as carol:\n%s", out)
	if !strings.Contains(out, verified) {
		t.Errorf("one-off scan does not name its proven requester:\n%s", out)
	}
	res := e.scanJSON(ctx, append(slices.Clone(scanCmd), "--id", "nightly", "--every", "24h", "--session", carol, "--wait", "--json"))
	if g := res.Requester; g == nil || g.Person == nil || g.Person.Subject != "carol" || !g.Person.Verified || g.Workflow != scan.WorkflowID("nightly")+"/authorize" {
		t.Errorf("scheduled scan's requester %+v; want carol, verified by the schedule's authorization", res.Requester)
	}
	if last := e.mustCLI(ctx, "scan", "--id", "nightly", "--last"); !strings.Contains(last, verified) {
		t.Errorf("--last does not name the requester:\n%s", last)
	}
	e.mustCLI(ctx, "scan", "--id", "nightly", "--delete")

	// The action tokens are in the histories (a scan's input, the
	// schedule's authorization); sent again, each is refused as spent.
	defs, diags, err := scan.LoadDefinitions([]string{filepath.Join("..", "..", "examples", "ms08-067.hcl")})
	if err != nil || diags.HasErrors() {
		t.Fatal(err, diags)
	}
	patches, err := defs.Patches([]string{"KB958644"})
	if err != nil {
		t.Fatal(err)
	}
	invFile, diags := rollout.LoadInventory(inv)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	tokens, _ := e.historyTokens(ctx)
	replayed := 0
	for _, tok := range tokens {
		aud := audienceOf(t, tok)
		if len(aud) != 1 {
			continue
		}
		switch aud[0] {
		case "urn:patchway:scan/adhoc:scan":
			run, err := scan.Start(ctx, e.client, scan.Input{ScanID: "adhoc", Hosts: invFile.Hosts, Sites: invFile.Sites, Patches: patches, Token: tok})
			if err == nil {
				_, err = scan.Await(ctx, e.client, run.GetID(), run.GetRunID())
			}
			if err == nil || !strings.Contains(err.Error(), "token_replayed") {
				t.Errorf("a one-off scan's token sent again: %v; want it refused as spent", err)
			}
			replayed++
		case "urn:patchway:scan/nightly:scan":
			if _, err := scan.Authorize(ctx, e.client, scan.AuthorizeInput{ScanID: "nightly", Token: tok}); err == nil || !strings.Contains(err.Error(), "token_replayed") {
				t.Errorf("a schedule's token sent again: %v; want it refused as spent", err)
			}
			replayed++
		}
	}
	t.Logf("%d scan tokens found in history, each refused when sent again", replayed)
	if replayed < 2 {
		t.Errorf("%d scan tokens found in history to replay; want carol's one-off and her schedule's", replayed)
	}
}

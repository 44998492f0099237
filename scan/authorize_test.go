package scan

import (
	"strings"
	"testing"
	"time"

	"github.com/patchway/patchway/contract"
)

// TestScanProvesItsRequesterBeforeAnyHost: the gates policy's scan rule
// decides who may scan; a refusal fails the scan with the policy's reason
// before any host is touched, and an allowed scan records the person.
func TestScanProvesItsRequesterBeforeAnyHost(t *testing.T) {
	tests := []struct {
		name    string
		user    string
		grant   *Grant
		refused string // "" allowed
		want    string // the requester recorded
	}{
		{name: "member of security-team", user: "alice", want: "alice"},
		{name: "not in the group", user: "mallory", refused: "security-team"},
		{name: "nobody", refused: "no token and no name"},
		{name: "a schedule's grant", grant: &Grant{ScanID: "nightly", Person: &contract.Person{Subject: "carol", Name: "carol", Verified: true, Issuer: "https://idp.example"}, Workflow: "scan/nightly/authorize", Run: "r1"}, want: "carol"},
		{name: "a grant for another scan", grant: &Grant{ScanID: "weekly", Person: &contract.Person{Name: "carol"}}, refused: `grant is for scan "weekly"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := scanInput(1)
			in.RequestedBy, in.Grant = tt.user, tt.grant
			env := newScanEnv(t)
			fleet := newScanFleet(t, env, in.Hosts, testStart)
			if tt.refused == "" {
				res := runScan(t, env, in)
				if res.Requester == nil || res.Requester.Person.Name != tt.want {
					t.Fatalf("requester %+v, want %s", res.Requester, tt.want)
				}
				if tt.grant == nil && (res.Requester.Person.Verified || res.Requester.Workflow != WorkflowID("nightly")) {
					t.Errorf("typed name recorded as %+v; want unverified, proven by this scan", res.Requester)
				}
				return
			}
			packed, err := in.Pack()
			if err != nil {
				t.Fatal(err)
			}
			env.ExecuteWorkflow(WorkflowName, packed)
			err = env.GetWorkflowError()
			if err == nil || !strings.Contains(err.Error(), tt.refused) || !strings.Contains(err.Error(), contract.Refused) {
				t.Fatalf("scan error %v; want a refusal naming %q", err, tt.refused)
			}
			if fleet.verifies != 0 {
				t.Errorf("%d hosts verified by a refused scan; want none", fleet.verifies)
			}
		})
	}
}

// TestAuthorizeWorkflowGrantsOrRefuses: the grant a schedule keeps is
// the gates policy's, with the person it proved.
func TestAuthorizeWorkflowGrantsOrRefuses(t *testing.T) {
	env := newScanEnv(t)
	newScanFleet(t, env, nil, testStart)
	env.ExecuteWorkflow(AuthorizeWorkflowName, AuthorizeInput{ScanID: "nightly", User: "bob"})
	var g Grant
	if err := env.GetWorkflowResult(&g); err != nil {
		t.Fatal(err)
	}
	if g.Person == nil || g.Person.Name != "bob" || g.ScanID != "nightly" || !g.At.Equal(testStart) || g.Revision == "" {
		t.Errorf("grant %+v; want bob's for nightly at %s with the policy revision", g, testStart.Format(time.RFC3339))
	}
	if !strings.Contains(g.String(), "bob (unverified)") {
		t.Errorf("grant reads %q; want the typed name marked unverified", g.String())
	}

	env = newScanEnv(t)
	newScanFleet(t, env, nil, testStart)
	env.ExecuteWorkflow(AuthorizeWorkflowName, AuthorizeInput{ScanID: "nightly", User: "grace"})
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "scan nightly refused") {
		t.Errorf("grace's grant: %v; want the gates policy's refusal", err)
	}
	env = newScanEnv(t)
	env.ExecuteWorkflow(AuthorizeWorkflowName, AuthorizeInput{ScanID: "bad id", User: "bob"})
	if err := env.GetWorkflowError(); err == nil || !strings.Contains(err.Error(), "scan id") {
		t.Errorf("bad id: %v; want the id refused", err)
	}
}

package console

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/patchway/patchway/contract"
	"github.com/patchway/patchway/report"
	"github.com/patchway/patchway/rollout"
	"github.com/patchway/patchway/workflows"
)

// Bounds of what one page lists.
const (
	maxRollouts = 100
	// listQueries bounds the progress queries the list runs at once.
	listQueries = 8
	maxHostRows = 500
	// listSince is how far back the list shows ended rollouts.
	listSince = 30 * 24 * time.Hour
)

// frame is what every page's layout needs.
type frame struct {
	Title     string
	Person    string
	CSRF      string
	LoginURL  string
	CanSignIn bool
	Namespace string
	Address   string
}

func (s *Server) frame(r *http.Request, title string) frame {
	f := frame{Title: title, LoginURL: loginURL(r), CanSignIn: s.opts.Issuer != "", Namespace: s.opts.Namespace, Address: s.opts.Address}
	if ses := s.sessionOf(r); ses != nil {
		f.Person, f.CSRF = ses.Subject, ses.CSRF
	}
	return f
}

// fragments are the parts of a page its script refreshes.
var fragments = []string{"live", "hosts"}

// render writes page, or only the part fragment names ("" : the page).
func (s *Server) render(w http.ResponseWriter, status int, page string, data any, fragment string) {
	t := s.pages[page]
	name := "layout"
	if slices.Contains(fragments, fragment) && t.Lookup(fragment) != nil {
		name = fragment
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		s.opts.Logger.Error("console: render", "page", page, "error", err)
		http.Error(w, "the console could not render this page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

type errorPage struct {
	frame
	Message string
	Retry   bool
}

func (s *Server) renderError(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	s.render(w, status, "error", errorPage{frame: s.frame(r, title), Message: msg, Retry: status == http.StatusServiceUnavailable}, "")
}

// failed shows why the console could not read what a page needs: an
// unknown rollout is a 404, a server that does not answer a 503 that the
// page retries by itself.
func (s *Server) failed(w http.ResponseWriter, r *http.Request, what string, err error) {
	var notFound *serviceerror.NotFound
	switch {
	case errors.As(err, &notFound):
		s.renderError(w, r, http.StatusNotFound, "No such rollout", fmt.Sprintf("There is no %s in namespace %s.", what, s.opts.Namespace))
	case unavailable(err):
		s.renderError(w, r, http.StatusServiceUnavailable, "Temporal is not answering",
			fmt.Sprintf("The Temporal server at %s does not answer (%v). This page tries again every few seconds.", s.opts.Address, err))
	default:
		s.opts.Logger.Warn("console: read", "what", what, "error", err)
		s.renderError(w, r, http.StatusBadGateway, "Cannot read "+what, err.Error())
	}
}

// unavailable tells a server (or a worker) that is down or slow.
func unavailable(err error) bool {
	var un *serviceerror.Unavailable
	if errors.As(err, &un) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if st, ok := status.FromError(errors.Unwrap(err)); ok && (st.Code() == codes.Unavailable || st.Code() == codes.DeadlineExceeded) {
		return true
	}
	return strings.Contains(err.Error(), "connection refused")
}

// listRow is one rollout of the list.
type listRow struct {
	ID, KB       string
	Severity     string
	Status       string
	Stage        string
	Gate         string
	Deadline     time.Time
	Left         string
	Breached     bool
	Forecast     string
	ForecastLate bool
	Compliance   string
	Done, Total  int
	Error        string
}

type listPage struct {
	frame
	Rows []listRow
	More int
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	c := s.opts.Client
	running, err := workflows.RunningRollouts(ctx, c)
	if err != nil {
		s.failed(w, r, "the rollouts list", err)
		return
	}
	recent, err := workflows.RolloutsSince(ctx, c, s.opts.Now().Add(-listSince))
	if err != nil {
		s.failed(w, r, "the rollouts list", err)
		return
	}
	ids := running
	for _, id := range recent {
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	page := listPage{frame: s.frame(r, "Rollouts")}
	if len(ids) > maxRollouts {
		page.More, ids = len(ids)-maxRollouts, ids[:maxRollouts]
	}
	// One progress query per rollout, a few at a time.
	page.Rows = make([]listRow, len(ids))
	var wg sync.WaitGroup
	sem := make(chan struct{}, listQueries)
	for k, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			p, err := workflows.GetProgress(ctx, c, id)
			if err != nil {
				page.Rows[k] = listRow{ID: id, Error: err.Error()}
				return
			}
			page.Rows[k] = s.listRow(p)
		})
	}
	wg.Wait()
	s.render(w, http.StatusOK, "list", page, r.URL.Query().Get("fragment"))
}

func (s *Server) listRow(p workflows.Progress) listRow {
	row := listRow{ID: p.RolloutID, KB: p.KB, Severity: string(p.Severity), Status: string(p.Status), Stage: p.Stage, Gate: p.WaitingGate,
		Deadline: p.Deadline, Breached: p.Breached, Done: p.HostsDone, Total: p.HostsTotal}
	row.Left = s.timeLeft(p.Deadline, p.Breached, p.Status.Ended())
	if f := p.Forecast; f != nil && !f.Completion.IsZero() {
		row.Forecast, row.ForecastLate = "done by "+f.Completion.UTC().Format("Jan 2 15:04 MST"), f.Breach
		if f.Breach {
			row.Forecast += " (late)"
		}
	}
	totals := map[rollout.HostState]int{}
	hosts := 0
	for _, st := range p.Steps {
		hosts += st.Hosts
		for k, v := range st.Totals {
			totals[k] += v
		}
	}
	row.Compliance = contract.PercentText(report.CompliancePercent(totals, hosts))
	return row
}

// timeLeft reads a deadline as people do: "2d 4h left", "breached 3h ago".
func (s *Server) timeLeft(deadline time.Time, breached, ended bool) string {
	if deadline.IsZero() {
		return ""
	}
	left := deadline.Sub(s.opts.Now()).Truncate(time.Minute)
	switch {
	case ended:
		return "deadline " + deadline.UTC().Format("Jan 2 15:04 MST")
	case left <= 0 || breached:
		return "breached " + rollout.FormatDuration(-left) + " ago"
	default:
		return rollout.FormatDuration(left) + " left"
	}
}

// hostRow is one host of a rollout page.
type hostRow struct {
	contract.HostReport
	Link string
}

// heatCell is one value of one dimension.
type heatCell struct {
	Value      string
	Hosts      int
	Compliance string
	// Heat is 0 (none compliant) to 10 (all), for the colour.
	Heat    int
	Failing int
}

type heatRow struct {
	Dimension string
	Cells     []heatCell
}

type stepView struct {
	workflows.StepProgress
	Segments []segment
	Counts   []stateCount
}

type segment struct {
	State  string
	X, W   float64
	Hosts  int
	Height int
}

type stateCount struct {
	State string
	N     int
}

type decisionView struct {
	workflows.Record
	Rule     string
	Revision string
}

// flash is the outcome of an action, shown at the top of the page.
type flash struct {
	OK         bool
	Message    string
	Violations []rollout.Violation
}

type rolloutPage struct {
	frame
	ID          string
	P           workflows.Progress
	Left        string
	Steps       []stepView
	Hosts       []hostRow
	Shown       int
	Matching    int
	States      []stateCount
	Filter      string
	Search      string
	Heat        []heatRow
	Decisions   []decisionView
	History     string
	Batches     string
	Provisional string
	Flash       *flash
	// Halted is the wave that halted, when the rollout did.
	Halted   string
	Failing  []hostRow
	CanAct   bool
	ReadOnly string
	Ended    bool
}

// hostStates in the order pages show them.
var hostStates = rollout.HostStates

func (s *Server) handleRollout(w http.ResponseWriter, r *http.Request) {
	s.showRollout(w, r, http.StatusOK, nil)
}

func (s *Server) showRollout(w http.ResponseWriter, r *http.Request, code int, fl *flash) {
	id := r.PathValue("id")
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	p, err := workflows.GetProgress(ctx, s.opts.Client, id)
	if err != nil {
		s.failed(w, r, "rollout "+id, err)
		return
	}
	rep, provisional, err := s.report(ctx, id)
	if err != nil {
		s.failed(w, r, "the hosts of rollout "+id, err)
		return
	}
	q := r.URL.Query()
	page := rolloutPage{frame: s.frame(r, "Rollout "+id), ID: id, P: p, Flash: fl, Provisional: provisional,
		Filter: q.Get("state"), Search: strings.TrimSpace(q.Get("q")), Ended: p.Status.Ended()}
	page.Left = s.timeLeft(p.Deadline, p.Breached, page.Ended)
	page.CanAct = page.Person != "" && !page.Ended
	if s.opts.Issuer == "" {
		page.ReadOnly = "This console was started without an identity provider: it shows rollouts but cannot act."
	}
	for _, st := range p.Steps {
		page.Steps = append(page.Steps, viewStep(st))
		if st.Status == workflows.StepHalted {
			page.Halted = st.Name
		}
	}
	page.States = stateCounts(rep.Totals)
	for _, h := range rep.Hosts {
		row := hostRow{HostReport: h, Link: "/rollouts/" + url.PathEscape(id) + "/hosts/" + url.PathEscape(h.Name)}
		if page.Halted != "" && failing(h.State) {
			page.Failing = append(page.Failing, row)
		}
		if page.Filter != "" && string(h.State) != page.Filter {
			continue
		}
		if page.Search != "" && !matches(h, page.Search) {
			continue
		}
		page.Matching++
		if len(page.Hosts) < maxHostRows {
			page.Hosts = append(page.Hosts, row)
		}
	}
	page.Shown = len(page.Hosts)
	page.Heat = heat(rep.By)
	for _, d := range slices.Backward(p.Decisions) {
		page.Decisions = append(page.Decisions, viewDecision(d))
	}
	if s.opts.WebUI != "" {
		ns := url.PathEscape(s.opts.Namespace)
		page.History = s.opts.WebUI + "/namespaces/" + ns + "/workflows/" + url.PathEscape(workflows.WorkflowID(id))
		page.Batches = s.opts.WebUI + "/namespaces/" + ns + "/workflows?query=" + url.QueryEscape(fmt.Sprintf("RolloutId = %q", id))
	}
	s.render(w, code, "rollout", page, q.Get("fragment"))
}

// report is the rollout's report: final, or built now from the report
// query with the exceptions policy, as `patchway report` builds it.
func (s *Server) report(ctx context.Context, id string) (contract.Report, string, error) {
	st, err := workflows.FetchReport(ctx, s.opts.Client, id)
	if err != nil {
		return contract.Report{}, "", err
	}
	if st.Report != nil {
		return *st.Report, "", nil
	}
	rep, err := report.Build(ctx, s.opts.Exceptions, st.Input)
	if err != nil {
		return contract.Report{}, "", err
	}
	rep, err = rep.Expanded()
	return rep, st.Provisional, err
}

// failing tells the hosts a person must look at: the states
// rollout.AttentionOrder ranks before the ones merely on their way
// (in_progress, pending). Which of them halt a wave is the waves
// policy's to count, and the step shows its count.
func failing(st rollout.HostState) bool {
	return rollout.AttentionRank(st) >= 0 && rollout.AttentionRank(st) < rollout.AttentionRank(rollout.StateInProgress)
}

func matches(h contract.HostReport, q string) bool {
	q = strings.ToLower(q)
	for _, f := range []string{h.Name, h.Region, h.Site, string(h.Tier), h.Role, h.Owner, strings.Join(h.Reasons, " ")} {
		if strings.Contains(strings.ToLower(f), q) {
			return true
		}
	}
	return false
}

func stateCounts(totals map[rollout.HostState]int) []stateCount {
	var out []stateCount
	for _, st := range hostStates {
		if n := totals[st]; n > 0 {
			out = append(out, stateCount{State: string(st), N: n})
		}
	}
	return out
}

// viewStep lays a step's states out as one stacked bar (SVG, so no
// inline style is needed under the page's content security policy).
func viewStep(st workflows.StepProgress) stepView {
	v := stepView{StepProgress: st, Counts: stateCounts(st.Totals)}
	if st.Hosts == 0 {
		return v
	}
	x := 0.0
	for _, c := range v.Counts {
		w := 100 * float64(c.N) / float64(st.Hosts)
		v.Segments = append(v.Segments, segment{State: c.State, X: x, W: w, Hosts: c.N})
		x += w
	}
	return v
}

func heat(by []contract.Breakdown) []heatRow {
	var rows []heatRow
	for _, b := range by {
		if b.Dimension == "role" {
			continue
		}
		if len(rows) == 0 || rows[len(rows)-1].Dimension != b.Dimension {
			rows = append(rows, heatRow{Dimension: b.Dimension})
		}
		fail := 0
		for st, n := range b.Totals {
			if failing(st) {
				fail += n
			}
		}
		cell := heatCell{Value: b.Value, Hosts: b.Hosts, Compliance: contract.PercentText(b.CompliancePercent),
			Heat: int(b.CompliancePercent / 10), Failing: fail}
		rows[len(rows)-1].Cells = append(rows[len(rows)-1].Cells, cell)
	}
	return rows
}

func viewDecision(d workflows.Record) decisionView {
	v := decisionView{Record: d, Revision: shortRevision(d.Revision)}
	var codes []string
	for _, viol := range d.Violations {
		codes = append(codes, viol.Code)
	}
	v.Rule = strings.Join(codes, ", ")
	return v
}

func shortRevision(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

type hostPage struct {
	frame
	ID     string
	Host   workflows.HostStatus
	Report *contract.HostReport
	Back   string
}

func (s *Server) handleHost(w http.ResponseWriter, r *http.Request) {
	id, name := r.PathValue("id"), r.PathValue("host")
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	h, err := workflows.GetHost(ctx, s.opts.Client, id, name)
	if err != nil {
		s.failed(w, r, "host "+name+" of rollout "+id, err)
		return
	}
	page := hostPage{frame: s.frame(r, name+" in "+id), ID: id, Host: h, Back: "/rollouts/" + url.PathEscape(id)}
	if rep, _, err := s.report(ctx, id); err == nil {
		for k := range rep.Hosts {
			if rep.Hosts[k].Name == name {
				page.Report = &rep.Hosts[k]
			}
		}
	}
	s.render(w, http.StatusOK, "host", page, "")
}

// actions the console's forms may send, by their form value.
var actions = map[string]string{
	"approve":   workflows.UpdateApprove,
	"reject":    workflows.UpdateReject,
	"pause":     workflows.UpdatePause,
	"resume":    workflows.UpdateResume,
	"skip_host": workflows.UpdateSkipHost,
	"except":    workflows.UpdateExcept,
}

// maxForm bounds an action's form.
const maxForm = 16 << 10

// handleAct sends one action as the signed-in person: their login token
// is exchanged for a token bound to this action, and the gates policy in
// the workflow decides; its refusal is shown as it gave it.
func (s *Server) handleAct(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, http.StatusBadRequest, "Refused", "The form could not be read: "+err.Error())
		return
	}
	ses := s.sessionOf(r)
	if ses == nil {
		http.Redirect(w, r, "/login?next="+url.QueryEscape("/rollouts/"+url.PathEscape(id)), http.StatusSeeOther)
		return
	}
	if !s.checkCSRF(r, ses) {
		s.renderError(w, r, http.StatusForbidden, "Refused", "This form did not come from your console session; reload the page and try again.")
		return
	}
	update, ok := actions[r.PostFormValue("action")]
	if !ok {
		s.renderError(w, r, http.StatusBadRequest, "Refused", fmt.Sprintf("%q is not an action of the console.", r.PostFormValue("action")))
		return
	}
	act := workflows.Act{Update: update, Gate: r.PostFormValue("gate"), Host: strings.TrimSpace(r.PostFormValue("host")), Reason: strings.TrimSpace(r.PostFormValue("reason"))}
	if fl := s.checkAct(&act, r.PostFormValue("expires")); fl != nil {
		s.showRollout(w, r, http.StatusBadRequest, fl)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Minute)
	defer cancel()
	p, err := s.identityProvider(ctx)
	if err == nil {
		act.Token, err = p.Exchange(ctx, ses.ClientID, ses.AccessToken, act.Audience(id))
	}
	if err != nil {
		s.showRollout(w, r, http.StatusUnauthorized, &flash{Message: "Your sign-in could not be turned into a token for this action: " + err.Error() + ". Sign in again."})
		return
	}
	rec, err := workflows.SendUpdate(ctx, s.opts.Client, id, update, act.Request())
	if err != nil {
		if refusal, ok := workflows.AsRefusal(err); ok {
			who := "rollout " + id
			if refusal.ByPolicy {
				who = "policy"
			}
			s.showRollout(w, r, http.StatusForbidden, &flash{Message: r.PostFormValue("action") + " refused by " + who + ": " + refusal.Message, Violations: refusal.Violations})
			return
		}
		s.showRollout(w, r, http.StatusBadGateway, &flash{Message: err.Error()})
		return
	}
	msg := fmt.Sprintf("%s: %s by %s", rec.Kind, rec.Subject, rec.User)
	if rec.Revision != "" {
		msg += ", allowed by policy revision " + shortRevision(rec.Revision)
	}
	s.showRollout(w, r, http.StatusOK, &flash{OK: true, Message: msg})
}

// checkAct reads what an action needs from its form.
func (s *Server) checkAct(a *workflows.Act, expires string) *flash {
	switch a.Update {
	case workflows.UpdateSkipHost, workflows.UpdateExcept:
		if a.Host == "" {
			return &flash{Message: "Name the host."}
		}
	}
	if a.Reason == "" && a.Update != workflows.UpdateApprove {
		return &flash{Message: "Say why: the reason is recorded in the rollout."}
	}
	if a.Update == workflows.UpdateExcept {
		until, err := workflows.ParseExpiry(expires, s.opts.Now())
		if err != nil {
			return &flash{Message: strings.Replace(err.Error(), "--expires", "expires", 1)}
		}
		a.Expires = until
	}
	return nil
}

var funcs = template.FuncMap{
	"pct": func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"short": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("Jan 2 15:04:05 MST")
	},
	"join": strings.Join,
}

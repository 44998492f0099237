package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/api/operatorservice/v1"

	"github.com/patchway/patchway/devserver"
	"github.com/patchway/patchway/workflows"
)

// setupOptions are the flags of patchway setup.
type setupOptions struct {
	ioStreams
	conn      clientFlags
	retention string
	create    bool
	cloud     bool

	// Set by Validate.
	keep time.Duration
}

func newSetupCmd(_ *globalFlags) *cobra.Command {
	o := &setupOptions{}
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Prepare a Temporal namespace for Patchway: retention and search attributes (idempotent)",
		Long: "Prepare the namespace the worker and the CLI use (--namespace, TEMPORAL_NAMESPACE) on a self-hosted\n" +
			"cluster: set the retention of closed rollouts and register the search attributes Patchway's workflows\n" +
			"set, waiting until the frontend lists them. Run it again at any time: it changes only what differs and\n" +
			"says what it did. --create registers the namespace if it does not exist. A search attribute registered\n" +
			"with another type is an error (a cluster cannot change a type).\n\n" +
			"On Temporal Cloud (an address under tmprl.cloud or api.temporal.io, or --cloud) namespaces are changed\n" +
			"through Cloud's own tools: setup changes nothing and prints the tcld commands that add what is missing.",
		Args: cobra.NoArgs,
		RunE: runOptions(o),
	}
	o.conn.register(cmd.Flags())
	cmd.Flags().StringVar(&o.retention, "retention", "30d", `how long closed rollouts stay in the namespace ("30d", "720h")`)
	cmd.Flags().BoolVar(&o.create, "create", false, "register the namespace when it does not exist (self-hosted)")
	cmd.Flags().BoolVar(&o.cloud, "cloud", false, "the namespace is on Temporal Cloud: print the tcld commands instead of changing it")
	return cmd
}

// Complete takes the streams.
func (o *setupOptions) Complete(cmd *cobra.Command, _ []string) error {
	o.ioStreams = streamsOf(cmd)
	return nil
}

// Validate wants a retention of at least a day (Temporal's minimum).
func (o *setupOptions) Validate() error {
	d, err := parseDayDuration(o.retention)
	if err != nil || d < 24*time.Hour {
		return fmt.Errorf("--retention %q: want at least a day (\"30d\", \"720h\")", o.retention)
	}
	o.keep = d
	return nil
}

// Run prepares the namespace, or on Temporal Cloud prints what to run.
func (o *setupOptions) Run(ctx context.Context) error {
	c, err := o.conn.dial(ctx, cliLogger())
	if err != nil {
		return err
	}
	defer c.Close()
	attrs := patchwaySearchAttributes()
	ns := o.conn.namespace
	if o.cloud || isTemporalCloud(o.conn.address) {
		// Cloud's API keys seldom may list search attributes; when they
		// may, only the missing ones are printed.
		missing := attrs
		if resp, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns}); err == nil {
			missing = missing[:0:0]
			for _, a := range attrs {
				if t, ok := resp.GetCustomAttributes()[a.Name]; !ok || t != a.Type {
					missing = append(missing, a)
				}
			}
		}
		return printCloudSetup(o.Out, ns, o.keep, missing)
	}
	ch, err := devserver.PrepareNamespace(ctx, c, devserver.NamespaceSetup{
		Namespace: ns, Retention: o.keep, SearchAttributes: attrs, Create: o.create,
	})
	if err != nil {
		return err
	}
	switch {
	case ch.Created:
		fmt.Fprintf(o.Out, "namespace %s: created with retention %s\n", ns, days(o.keep))
	case ch.RetentionSet:
		fmt.Fprintf(o.Out, "namespace %s: retention %s (was %s)\n", ns, days(o.keep), days(ch.RetentionWas))
	default:
		fmt.Fprintf(o.Out, "namespace %s: retention %s, unchanged\n", ns, days(o.keep))
	}
	for _, a := range ch.Added {
		fmt.Fprintf(o.Out, "search attribute %s (%s): added\n", a.Name, devserver.TypeName(a.Type))
	}
	if len(ch.Present) > 0 {
		fmt.Fprintf(o.Out, "search attributes already there: %s\n", strings.Join(ch.Present, ", "))
	}
	if !ch.Changed() {
		fmt.Fprintln(o.Out, "nothing to change")
	}
	return nil
}

// patchwaySearchAttributes are the search attributes Patchway's workflows
// set, as the namespace setup takes them.
func patchwaySearchAttributes() []devserver.SearchAttribute {
	attrs := make([]devserver.SearchAttribute, 0, len(workflows.SearchAttributes))
	for _, a := range workflows.SearchAttributes {
		attrs = append(attrs, devserver.SearchAttribute{Name: a.Name, Type: a.Type})
	}
	return attrs
}

// isTemporalCloud tells a Temporal Cloud endpoint by its host name.
func isTemporalCloud(address string) bool {
	host := strings.ToLower(address)
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return strings.HasSuffix(host, ".tmprl.cloud") || strings.HasSuffix(host, ".api.temporal.io")
}

// printCloudSetup prints the tcld commands that prepare a Cloud namespace.
func printCloudSetup(out io.Writer, ns string, keep time.Duration, missing []devserver.SearchAttribute) error {
	fmt.Fprintf(out, "namespace %s is on Temporal Cloud: Patchway changes nothing there. Run (tcld login first):\n\n", ns)
	fmt.Fprintf(out, "tcld namespace retention set --namespace %s --retention-days %d\n", ns, int(keep.Hours()/24))
	if len(missing) == 0 {
		_, err := fmt.Fprintln(out, "\nEvery search attribute Patchway needs is there.")
		return err
	}
	fmt.Fprintf(out, "tcld namespace search-attributes add --namespace %s", ns)
	for _, a := range missing {
		fmt.Fprintf(out, " \\\n    --search-attribute %s=%s", a.Name, devserver.TypeName(a.Type))
	}
	_, err := fmt.Fprintln(out)
	return err
}

// days prints a retention in days when it is whole days.
func days(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
	return d.String()
}

package devserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	namespacepb "go.temporal.io/api/namespace/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"
)

// NamespaceSetup is what a namespace must have: a retention of closed
// workflows and custom search attributes. The embedded server applies it
// at every start; `patchway setup` applies it to any self-hosted cluster.
// Nothing in it is particular to the embedded server.
type NamespaceSetup struct {
	Namespace        string
	Retention        time.Duration
	SearchAttributes []SearchAttribute
	// Create registers the namespace when it does not exist; otherwise a
	// missing namespace is an error.
	Create bool
	// Poll is how often to check that added search attributes are
	// visible (1 s when zero).
	Poll time.Duration
}

func (s NamespaceSetup) poll() time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return time.Second
}

// untilKnown runs call until no service answers that the namespace is
// not found, for at most namespaceKnownWithin: a frontend caches a
// namespace it did not find (for about a second), and every service
// learns of a new one when its namespace cache refreshes, so a namespace
// DescribeNamespace finds can still be unknown to the next call.
func (s NamespaceSetup) untilKnown(ctx context.Context, call func() error) error {
	deadline := time.Now().Add(namespaceKnownWithin)
	for {
		err := call()
		var notFound *serviceerror.NamespaceNotFound
		if !errors.As(err, &notFound) || time.Now().After(deadline) {
			return err
		}
		if err := sleep(ctx, s.poll()); err != nil {
			return err
		}
	}
}

// namespaceKnownWithin bounds the wait for a namespace that exists to be
// known to every service.
const namespaceKnownWithin = 30 * time.Second

// NamespaceChanges says what PrepareNamespace found and changed.
type NamespaceChanges struct {
	Created bool
	// RetentionWas is the retention found (zero when created).
	RetentionWas time.Duration
	RetentionSet bool
	// Added are the search attributes registered; Present those already
	// there with the right type.
	Added   []SearchAttribute
	Present []string
}

// Changed tells whether anything was changed.
func (c NamespaceChanges) Changed() bool { return c.Created || c.RetentionSet || len(c.Added) > 0 }

// PrepareNamespace brings a namespace to setup, idempotently: it creates
// the namespace (when asked), sets the retention when it differs, adds
// the search attributes it lacks and waits until the frontend lists them.
// A search attribute registered with another type is an error naming it:
// a server cannot change a search attribute's type.
func PrepareNamespace(ctx context.Context, c client.Client, setup NamespaceSetup) (NamespaceChanges, error) {
	var ch NamespaceChanges
	ws := c.WorkflowService()
	desc, err := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: setup.Namespace})
	var notFound *serviceerror.NamespaceNotFound
	switch {
	case errors.As(err, &notFound) && setup.Create:
		if _, err := ws.RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace: setup.Namespace, WorkflowExecutionRetentionPeriod: durationpb.New(setup.Retention),
		}); err != nil && !isAlreadyExists(err) {
			return ch, fmt.Errorf("create namespace %s: %w", setup.Namespace, err)
		}
		ch.Created = true
		// The services see a new namespace once their caches refresh.
		for {
			_, err := ws.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: setup.Namespace})
			if err == nil {
				break
			}
			if !errors.As(err, &notFound) {
				return ch, fmt.Errorf("describe namespace %s: %w", setup.Namespace, err)
			}
			if err := sleep(ctx, setup.poll()); err != nil {
				return ch, fmt.Errorf("wait for namespace %s: %w", setup.Namespace, err)
			}
		}
	case errors.As(err, &notFound):
		return ch, fmt.Errorf("namespace %s does not exist (create it, or pass --create)", setup.Namespace)
	case err != nil:
		return ch, fmt.Errorf("describe namespace %s: %w", setup.Namespace, err)
	default:
		ch.RetentionWas = desc.GetConfig().GetWorkflowExecutionRetentionTtl().AsDuration()
		if ch.RetentionWas != setup.Retention {
			if err := setup.untilKnown(ctx, func() error {
				_, err := ws.UpdateNamespace(ctx, &workflowservice.UpdateNamespaceRequest{
					Namespace: setup.Namespace,
					Config:    &namespacepb.NamespaceConfig{WorkflowExecutionRetentionTtl: durationpb.New(setup.Retention)},
				})
				return err
			}); err != nil {
				return ch, fmt.Errorf("set retention of namespace %s: %w", setup.Namespace, err)
			}
			ch.RetentionSet = true
		}
	}
	op := c.OperatorService()
	missing, present, err := missingSearchAttributes(ctx, op, setup)
	if err != nil {
		return ch, err
	}
	ch.Present = present
	if len(missing) == 0 {
		return ch, nil
	}
	req := &operatorservice.AddSearchAttributesRequest{Namespace: setup.Namespace, SearchAttributes: map[string]enumspb.IndexedValueType{}}
	for _, a := range missing {
		req.SearchAttributes[a.Name] = a.Type
	}
	if err := setup.untilKnown(ctx, func() error {
		_, err := op.AddSearchAttributes(ctx, req)
		return err
	}); err != nil && !isAlreadyExists(err) {
		return ch, fmt.Errorf("register search attributes in %s: %w", setup.Namespace, err)
	}
	ch.Added = missing
	// The frontend lists them once its namespace cache refreshes.
	for {
		still, _, err := missingSearchAttributes(ctx, op, setup)
		if err != nil {
			return ch, err
		}
		if len(still) == 0 {
			return ch, nil
		}
		if err := sleep(ctx, setup.poll()); err != nil {
			names := make([]string, 0, len(still))
			for _, a := range still {
				names = append(names, a.Name)
			}
			return ch, fmt.Errorf("wait for search attributes %v to show in %s: %w", names, setup.Namespace, err)
		}
	}
}

// missingSearchAttributes lists the wanted search attributes the
// namespace lacks (in setup's order) and those present.
func missingSearchAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, setup NamespaceSetup) (missing []SearchAttribute, present []string, err error) {
	var resp *operatorservice.ListSearchAttributesResponse
	err = setup.untilKnown(ctx, func() error {
		var err error
		resp, err = op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: setup.Namespace})
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("list search attributes of %s: %w", setup.Namespace, err)
	}
	have := resp.GetCustomAttributes()
	var conflicts []error
	for _, a := range setup.SearchAttributes {
		t, ok := have[a.Name]
		switch {
		case !ok:
			missing = append(missing, a)
		case t != a.Type:
			conflicts = append(conflicts, fmt.Errorf("search attribute %s is registered in %s as %s, Patchway needs %s (a type cannot change: remove it or use another namespace)",
				a.Name, setup.Namespace, TypeName(t), TypeName(a.Type)))
		default:
			present = append(present, a.Name)
		}
	}
	if len(conflicts) > 0 {
		return nil, nil, errors.Join(conflicts...)
	}
	slices.Sort(present)
	return missing, present, nil
}

func isAlreadyExists(err error) bool {
	var exists *serviceerror.AlreadyExists
	var nsExists *serviceerror.NamespaceAlreadyExists
	return errors.As(err, &exists) || errors.As(err, &nsExists)
}

// TypeName is a search attribute type as the Temporal CLI and tcld write
// it ("Keyword", "KeywordList", "Datetime").
func TypeName(t enumspb.IndexedValueType) string {
	switch t {
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD:
		return "Keyword"
	case enumspb.INDEXED_VALUE_TYPE_TEXT:
		return "Text"
	case enumspb.INDEXED_VALUE_TYPE_INT:
		return "Int"
	case enumspb.INDEXED_VALUE_TYPE_DOUBLE:
		return "Double"
	case enumspb.INDEXED_VALUE_TYPE_BOOL:
		return "Bool"
	case enumspb.INDEXED_VALUE_TYPE_DATETIME:
		return "Datetime"
	case enumspb.INDEXED_VALUE_TYPE_KEYWORD_LIST:
		return "KeywordList"
	}
	return t.String()
}

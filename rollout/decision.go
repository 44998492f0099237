package rollout

// Violation is one reason a policy said no. Code is a stable string that
// tests, the CLI and the UI rely on; Msg is a sentence a person can act on.
type Violation struct {
	Code string `json:"code"`
	Msg  string `json:"msg"`
}

// Decision is the common part of every policy decision. It is recorded in
// workflow history with the revision of the policy bundle that made it, so
// any decision can be explained later. A decision that failed to evaluate
// has Allow false and Error set: policies fail closed.
type Decision struct {
	Allow      bool        `json:"allow"`
	Violations []Violation `json:"violations,omitempty"`
	// Revision is the content hash of the policy bundle.
	Revision string `json:"revision"`
	// Error is set when evaluation failed; the decision then denies.
	Error string `json:"error,omitempty"`
}

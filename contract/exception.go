package contract

import (
	"time"

	"github.com/patchway/patchway/rollout"
)

// Exception is a granted exception for a host: it keeps the host excepted
// (not compliant, not failing) until Expires.
type Exception struct {
	Reason    string    `json:"reason"`
	GrantedBy string    `json:"granted_by,omitempty"`
	Expires   time.Time `json:"expires"`
}

// ExceptionInput asks what Exception makes of a host whose state is
// State, at Now. It is the exceptions policy's input, here rather than in
// policies so that the report can ask the policy without importing OPA.
type ExceptionInput struct {
	Exception Exception         `json:"exception"`
	State     rollout.HostState `json:"state"`
	Now       time.Time         `json:"now"`
}

// ExceptionDecision is the host's state under the exception and the
// reason ("" when the exception changes nothing).
type ExceptionDecision struct {
	rollout.Decision
	Active bool              `json:"active"`
	State  rollout.HostState `json:"state"`
	Reason string            `json:"reason"`
}

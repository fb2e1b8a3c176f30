// Package filter compiles and evaluates webhook payload filters: expressions in CEL, the
// Common Expression Language (github.com/google/cel-go), over the event a receiver would
// get. A filter is compiled and type-checked when a webhook is created or changed, so a
// mistake is a 400 that points at it, and evaluated before anything is sent.
//
// CEL suits filters written by users and run by us: it has no loops of its own, no I/O
// and no way to define functions, and every evaluation is bounded by a cost limit, so a
// hostile filter is refused when it is saved or stopped mid-way, never a stalled worker.
//
// A filter sees the delivery body's fields as variables:
//
//	id         string     the event id
//	event      string     the event name, e.g. "LOW_STOCK"
//	timestamp  timestamp  when the event happened
//	data       map        the event's data object (JSON numbers are doubles)
//
// and must evaluate to true (deliver) or false (do not). For example:
//
//	event == "LOW_STOCK" && data.qty < 5
//	has(data.location) && data.location.startsWith("WH-")
//	data.tags.exists(t, t == "critical")
package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
)

// Structural limits of every filter, whatever the configuration: they refuse at compile
// time what no reasonable filter needs and what would make checking it costly (deeply
// nested or huge expressions, comprehensions inside comprehensions inside comprehensions).
const (
	maxNestingDepth       = 32
	maxNodes              = 2000
	maxComprehensionDepth = 2
	maxRegexProgramSize   = 1000
)

// unknownCost is where cost estimates stop being about literals: an expression whose
// estimate reaches it depends on the size of the event's data. Literals within any
// length a filter may have cost many orders of magnitude less.
const unknownCost = 1 << 40

// Limits bound what a filter may be and cost.
type Limits struct {
	// MaxLength is the longest filter accepted, in bytes of its text.
	MaxLength int
	// CostLimit bounds one evaluation, in CEL cost units (about one per operation, and
	// per element or character that a function or comprehension visits). An evaluation
	// that reaches it stops; a filter that reaches it on every event is refused.
	CostLimit uint64
}

// Filter is a compiled filter, safe for concurrent use.
type Filter struct {
	text string
	prg  cel.Program
}

// Error is why a filter was refused: where (line and column, from 1; 0 when it is about
// the whole filter) and what.
type Error struct {
	Line, Column int
	Message      string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Message
	}
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// ErrCostLimit is an evaluation stopped at Limits.CostLimit.
var ErrCostLimit = errors.New("filter exceeded its cost limit")

// environment is the one CEL environment every filter is checked in.
var environment = sync.OnceValues(func() (*cel.Env, error) {
	return cel.NewEnv(
		cel.Variable("id", cel.StringType),
		cel.Variable("event", cel.StringType),
		cel.Variable("timestamp", cel.TimestampType),
		cel.Variable("data", cel.MapType(cel.StringType, cel.DynType)),
		// JSON numbers arrive as doubles: data.qty < 5 must compare them with ints.
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.ParserRecursionLimit(maxNestingDepth),
		cel.ExpressionNestingDepthLimit(maxNestingDepth),
		cel.ExpressionNodeLimit(maxNodes),
		cel.RegexProgramSizeLimit(maxRegexProgramSize),
		cel.ASTValidators(
			cel.ValidateComprehensionNestingLimit(maxComprehensionDepth),
			cel.ValidateRegexLiterals(),
			cel.ValidateTimestampLiterals(),
			cel.ValidateDurationLiterals(),
		),
	)
})

// Compile parses and type-checks text, which must evaluate to a bool, and refuses it if
// it breaks a limit, or if it costs more than the cost limit on every event or (sizes
// known) on some event. The Error says where.
func Compile(text string, l Limits) (*Filter, error) {
	switch {
	case strings.TrimSpace(text) == "":
		return nil, &Error{Message: "filter is empty"}
	case len(text) > l.MaxLength:
		return nil, &Error{Message: fmt.Sprintf("filter is %d bytes; at most %d are allowed", len(text), l.MaxLength)}
	case !utf8.ValidString(text) || strings.ContainsRune(text, 0):
		return nil, &Error{Message: "filter must be UTF-8 text without NUL characters"}
	}
	env, err := environment()
	if err != nil {
		return nil, fmt.Errorf("filter environment: %w", err)
	}
	ast, iss := env.Compile(text)
	if iss.Err() != nil {
		return nil, issueError(iss)
	}
	if !ast.OutputType().IsExactType(cel.BoolType) {
		return nil, &Error{Message: fmt.Sprintf("filter must evaluate to true or false, not %s", cel.FormatCELType(ast.OutputType()))}
	}
	est, err := env.EstimateCost(ast, unknownSizes{})
	if err != nil {
		return nil, &Error{Message: "filter cost cannot be estimated: " + err.Error()}
	}
	// The estimate's maximum is exact where every size is known (literals) and
	// astronomically large where it depends on the event's data, which is left to the
	// cost limit at run time.
	switch {
	case est.Min > l.CostLimit:
		return nil, &Error{Message: fmt.Sprintf("filter costs at least %d to evaluate on any event; the cost limit is %d", est.Min, l.CostLimit)}
	case est.Max > l.CostLimit && est.Max < unknownCost:
		return nil, &Error{Message: fmt.Sprintf("filter can cost up to %d to evaluate; the cost limit is %d", est.Max, l.CostLimit)}
	}
	prg, err := env.Program(ast, cel.CostLimit(l.CostLimit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, &Error{Message: err.Error()}
	}
	return &Filter{text: text, prg: prg}, nil
}

// Text is the filter as written.
func (f *Filter) Text() string { return f.text }

// issueError is the first of a compilation's issues, with its position from 1.
func issueError(iss *cel.Issues) error {
	errs := iss.Errors()
	if len(errs) == 0 {
		return &Error{Message: iss.String()}
	}
	first := errs[0]
	e := &Error{Message: first.Message}
	if loc := first.Location; loc != nil && loc.Line() > 0 {
		e.Line, e.Column = loc.Line(), loc.Column()+1
	}
	if len(errs) > 1 {
		e.Message += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	return e
}

// Event is what a filter sees: the fields of the delivery body.
type Event struct {
	vars map[string]any
}

// NewEvent prepares one event for any number of evaluations. data must be a JSON object
// (or empty, which is {}); timestamp is RFC 3339 (an unparsable one reads as the epoch).
func NewEvent(id, event, timestamp string, data []byte) (*Event, error) {
	obj := map[string]any{}
	if d := bytes.TrimSpace(data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if err := json.Unmarshal(d, &obj); err != nil {
			return nil, fmt.Errorf("decode event data: %w", err)
		}
	}
	at, err := time.Parse(time.RFC3339Nano, timestamp)
	if err != nil {
		at = time.Unix(0, 0).UTC()
	}
	// Converted once here rather than at each evaluation: one event is checked against
	// every subscriber's filter.
	return &Event{vars: map[string]any{
		"id":        id,
		"event":     event,
		"timestamp": at,
		"data":      types.DefaultTypeAdapter.NativeToValue(obj),
	}}, nil
}

// Match evaluates f on e. An error (a missing field the filter did not guard with has(),
// a type mismatch, the cost limit) is returned with false: the caller decides, and this
// service does not deliver what a filter could not approve.
func (f *Filter) Match(e *Event) (bool, error) {
	out, _, err := f.prg.Eval(e.vars)
	if err != nil {
		if strings.Contains(err.Error(), "cost limit exceeded") {
			return false, ErrCostLimit
		}
		return false, fmt.Errorf("evaluate filter: %w", err)
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, fmt.Errorf("filter evaluated to %v, not true or false", out.Type())
	}
	return b, nil
}

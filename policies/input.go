package policies

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// toValue converts a decision input to an OPA value directly, following
// the encoding/json rules the input types use (field tags, omitempty,
// omitzero, time.Time as RFC 3339, durations as nanoseconds). It is what
// json.Marshal followed by ast.ValueFromReader produces, at a fraction of
// the cost: on the per-host path that round trip was a fifth of a
// decision. As in encoding/json, the work that depends only on a type
// (which fields, under which names, with which options) is done once per
// type and cached. Values of other kinds (json.RawMessage, maps from
// `policy eval`) go through JSON.
func toValue(v any) (ast.Value, error) {
	rv := reflect.ValueOf(v)
	if !rv.IsValid() {
		return ast.NullValue, nil
	}
	return encoderFor(rv.Type())(rv)
}

// encoder converts one value of a given type.
type encoder func(reflect.Value) (ast.Value, error)

// encoders caches an encoder per reflect.Type.
var encoders sync.Map

var (
	timeType      = reflect.TypeFor[time.Time]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

func encoderFor(t reflect.Type) encoder {
	if e, ok := encoders.Load(t); ok {
		return e.(encoder)
	}
	// A recursive type refers to itself while its encoder is being built:
	// the placeholder forwards to the finished one.
	var (
		wg sync.WaitGroup
		f  encoder
	)
	wg.Add(1)
	e, loaded := encoders.LoadOrStore(t, encoder(func(v reflect.Value) (ast.Value, error) {
		wg.Wait()
		return f(v)
	}))
	if loaded {
		return e.(encoder)
	}
	f = newEncoder(t)
	wg.Done()
	encoders.Store(t, f)
	return f
}

func newEncoder(t reflect.Type) encoder {
	if t == timeType {
		return func(v reflect.Value) (ast.Value, error) {
			return ast.String(v.Interface().(time.Time).Format(time.RFC3339Nano)), nil
		}
	}
	if t.Kind() != reflect.Pointer && t.Implements(marshalerType) {
		return func(v reflect.Value) (ast.Value, error) { return viaJSON(v.Interface()) }
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := encoderFor(t.Elem())
		return func(v reflect.Value) (ast.Value, error) {
			if v.IsNil() {
				return ast.NullValue, nil
			}
			return elem(v.Elem())
		}
	case reflect.Interface:
		return func(v reflect.Value) (ast.Value, error) {
			if v.IsNil() {
				return ast.NullValue, nil
			}
			e := v.Elem()
			return encoderFor(e.Type())(e)
		}
	case reflect.Bool:
		return func(v reflect.Value) (ast.Value, error) { return ast.Boolean(v.Bool()), nil }
	case reflect.String:
		return func(v reflect.Value) (ast.Value, error) { return ast.String(v.String()), nil }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(v reflect.Value) (ast.Value, error) { return ast.InternedValue(v.Int()), nil }
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return func(v reflect.Value) (ast.Value, error) { return ast.InternedValue(int64(v.Uint())), nil }
	case reflect.Float32, reflect.Float64:
		return func(v reflect.Value) (ast.Value, error) { return ast.Number(json.Number(fmt.Sprint(v.Float()))), nil }
	case reflect.Slice, reflect.Array:
		elem := encoderFor(t.Elem())
		nilable := t.Kind() == reflect.Slice
		return func(v reflect.Value) (ast.Value, error) {
			if nilable && v.IsNil() {
				return ast.NullValue, nil
			}
			terms := make([]*ast.Term, v.Len())
			for i := range terms {
				x, err := elem(v.Index(i))
				if err != nil {
					return nil, err
				}
				terms[i] = ast.NewTerm(x)
			}
			return ast.NewArray(terms...), nil
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return func(v reflect.Value) (ast.Value, error) { return viaJSON(v.Interface()) }
		}
		elem := encoderFor(t.Elem())
		return func(v reflect.Value) (ast.Value, error) {
			if v.IsNil() {
				return ast.NullValue, nil
			}
			kvs := make([][2]*ast.Term, 0, v.Len())
			it := v.MapRange()
			for it.Next() {
				x, err := elem(it.Value())
				if err != nil {
					return nil, err
				}
				kvs = append(kvs, [2]*ast.Term{ast.StringTerm(it.Key().String()), ast.NewTerm(x)})
			}
			return ast.NewObject(kvs...), nil
		}
	case reflect.Struct:
		return structEncoder(t)
	}
	return func(v reflect.Value) (ast.Value, error) { return viaJSON(v.Interface()) }
}

// field is one JSON field of a struct: where it is, its key, its options.
type field struct {
	index     []int
	key       *ast.Term
	goName    string
	omitzero  bool
	omitempty bool
	encode    encoder
}

// structFields lists the JSON fields of t, with the fields of embedded
// untagged structs promoted in place, as encoding/json does for the
// input types (no name conflicts among them).
func structFields(t reflect.Type, prefix []int) []field {
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		index := append(append([]int(nil), prefix...), i)
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			fields = append(fields, structFields(f.Type, index)...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields = append(fields, field{
			index:     index,
			key:       ast.StringTerm(name),
			goName:    f.Name,
			omitzero:  strings.Contains(opts, "omitzero"),
			omitempty: strings.Contains(opts, "omitempty"),
			encode:    encoderFor(f.Type),
		})
	}
	return fields
}

func structEncoder(t reflect.Type) encoder {
	fields := structFields(t, nil)
	return func(v reflect.Value) (ast.Value, error) {
		kvs := make([][2]*ast.Term, 0, len(fields))
		for _, f := range fields {
			fv := v.FieldByIndex(f.index)
			if f.omitzero && fv.IsZero() || f.omitempty && emptyJSON(fv) {
				continue
			}
			x, err := f.encode(fv)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.goName, err)
			}
			kvs = append(kvs, [2]*ast.Term{f.key, ast.NewTerm(x)})
		}
		return ast.NewObject(kvs...), nil
	}
}

// emptyJSON is encoding/json's omitempty test.
func emptyJSON(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool:
		return !v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int() == 0
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return v.Uint() == 0
	case reflect.Float32, reflect.Float64:
		return v.Float() == 0
	case reflect.Interface, reflect.Pointer:
		return v.IsNil()
	}
	return false
}

func viaJSON(x any) (ast.Value, error) {
	b, err := json.Marshal(x)
	if err != nil {
		return nil, err
	}
	return ast.ValueFromReader(strings.NewReader(string(b)))
}

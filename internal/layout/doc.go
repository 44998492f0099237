// Package layout holds no code: its test keeps the dependency rules of
// ARCHITECTURE.md, so a package that reaches past its place fails the
// build's tests rather than a reviewer's eye.
package layout

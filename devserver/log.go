package devserver

import (
	"context"
	"log/slog"

	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/log/tag"
)

// serverLogger adapts a slog.Logger to the Temporal server's logger
// interface, dropping everything below minLevel: the server is chatty at
// INFO, and a developer running `patchway dev` wants warnings only.
type serverLogger struct {
	log      *slog.Logger
	minLevel *slog.LevelVar
}

var (
	_ log.Logger      = serverLogger{}
	_ log.SLogWrapper = serverLogger{}
)

func (s serverLogger) Debug(msg string, tags ...tag.Tag) { s.emit(slog.LevelDebug, msg, tags) }
func (s serverLogger) Info(msg string, tags ...tag.Tag)  { s.emit(slog.LevelInfo, msg, tags) }
func (s serverLogger) Warn(msg string, tags ...tag.Tag)  { s.emit(slog.LevelWarn, msg, tags) }
func (s serverLogger) Error(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }

// DPanic, Panic and Fatal are logged as errors: an embedded server must not
// take the host process down through its logger.
func (s serverLogger) DPanic(msg string, tags ...tag.Tag) { s.emit(slog.LevelError, msg, tags) }
func (s serverLogger) Panic(msg string, tags ...tag.Tag)  { s.emit(slog.LevelError, msg, tags) }
func (s serverLogger) Fatal(msg string, tags ...tag.Tag)  { s.emit(slog.LevelError, msg, tags) }

// SLog returns the logger for server components that log through slog
// directly, with the same minimum level.
func (s serverLogger) SLog() *slog.Logger {
	return slog.New(minLevelHandler{Handler: s.log.Handler(), min: s.minLevel})
}

// silent is above every level the server logs at: Stop sets it, since a
// stopping server warns about every connection its own services lose.
const silent = slog.LevelError + 4

// minLevelHandler drops records below min before its wrapped handler sees
// them.
type minLevelHandler struct {
	slog.Handler
	min slog.Leveler
}

func (h minLevelHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= h.min.Level() && h.Handler.Enabled(ctx, level)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{Handler: h.Handler.WithGroup(name), min: h.min}
}

func (s serverLogger) emit(level slog.Level, msg string, tags []tag.Tag) {
	if level < s.minLevel.Level() || !s.log.Enabled(context.Background(), level) {
		return
	}
	attrs := make([]slog.Attr, 0, len(tags))
	for _, t := range tags {
		attrs = append(attrs, slog.Any(t.Key(), t.Value()))
	}
	s.log.LogAttrs(context.Background(), level, msg, attrs...)
}

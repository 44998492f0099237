# METADATA
# title: Shared helpers
# description: Time parsing, duration text and numeric version comparison
#   used by the decision packages.
package patchway.lib

# Nanoseconds per unit.
minute_ns := 60000000000

hour_ns := 3600000000000

day_ns := 86400000000000

# ts parses an RFC 3339 time to nanoseconds; undefined when absent,
# malformed or Go's zero time (outside OPA's range).
ts(s) := time.parse_rfc3339_ns(s)

# list returns obj[key] as an array; [] when absent or null.
list(obj, key) := x if {
	x := obj[key]
	is_array(x)
} else := []

# duration renders nanoseconds in the largest exact unit, days only from
# two days on: 7d, 24h, 36h, 90m.
duration(ns) := sprintf("%dd", [round(ns / day_ns)]) if {
	ns > day_ns
	round(ns) % day_ns == 0
} else := sprintf("%dh", [round(ns / hour_ns)]) if {
	ns != 0
	round(ns) % hour_ns == 0
} else := sprintf("%dm", [round(ns / minute_ns)])

# version_compare compares dotted versions numerically part by part,
# missing parts counting as 0: -1, 0 or 1; undefined when either is not a
# dotted numeric version. Windows file versions have four parts
# (6.1.7601.24000), which semver cannot express. The comparison is the
# builtin patchway.version_compare (Go, registered by the engine).
version_compare(a, b) := patchway.version_compare(a, b)

weekdays := {"Sunday": 0, "Monday": 1, "Tuesday": 2, "Wednesday": 3, "Thursday": 4, "Friday": 5, "Saturday": 6}

# zone is the window's time zone, else the fallback, else UTC.
zone(w, fallback) := w.time_zone if {
	object.get(w, "time_zone", "") != ""
} else := fallback if {
	fallback != ""
} else := "UTC"

local_minute(ns, tz) := (c[0] * 60) + c[1] if c := time.clock([ns, tz])

day_allowed(w, _) if count(list(w, "days")) == 0

day_allowed(w, day) if day in list(w, "days")

# window_open holds when ns falls inside window w (minutes after local
# midnight; end before start wraps past midnight; start == end is all day).
window_open(w, tz, ns) if {
	clock := time.clock([ns, tz])
	open_at(w, weekdays[time.weekday([ns, tz])], (clock[0] * 60) + clock[1])
}

open_at(w, day, m) if {
	w.start < w.end
	day_allowed(w, day)
	m >= w.start
	m < w.end
}

open_at(w, day, _) if {
	w.start == w.end
	day_allowed(w, day)
}

open_at(w, day, m) if {
	w.start > w.end
	day_allowed(w, day)
	m >= w.start
}

open_at(w, day, m) if {
	w.start > w.end
	day_allowed(w, (day + 6) % 7)
	m < w.end
}

# whole_minute is ns cut to its minute: windows open and close on the
# minute, whatever the seconds of the time they are computed from.
whole_minute(ns) := ns - (ns % minute_ns)

# next_window_open is the next opening of w after ns (within 8 days).
next_window_open(w, tz, ns) := min({t |
	m := local_minute(ns, tz)
	some d in numbers.range(0, 8)
	t := whole_minute(ns) + ((((d * 1440) + w.start) - m) * minute_ns)
	t > ns
	window_open(w, tz, t)
})

# window_close is when the window open at ns closes.
window_close(w, tz, ns) := whole_minute(ns) + ((w.end - m) * minute_ns) if {
	m := local_minute(ns, tz)
	m < w.end
} else := whole_minute(ns) + (((1440 - m) + w.end) * minute_ns) if {
	m := local_minute(ns, tz)
}

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
list(obj, key) := [v | some v in object.get(obj, key, [])]

# duration renders nanoseconds in the largest exact unit, days only from
# two days on: 7d, 24h, 36h, 90m.
duration(ns) := sprintf("%dd", [round(ns / day_ns)]) if {
	ns > day_ns
	round(ns) % day_ns == 0
} else := sprintf("%dh", [round(ns / hour_ns)]) if {
	ns != 0
	round(ns) % hour_ns == 0
} else := sprintf("%dm", [round(ns / minute_ns)])

# valid_version holds for dotted numeric versions (1 to 4 parts or more).
valid_version(v) if regex.match(`^[0-9]+(\.[0-9]+)*$`, v)

version_parts(v) := [to_number(p) | some p in split(v, ".")]

version_part(parts, i) := parts[i] if i < count(parts)

else := 0

# version_compare compares dotted versions numerically part by part,
# missing parts counting as 0: -1, 0 or 1. Windows file versions have four
# parts (6.1.7601.24000), which semver cannot express.
version_compare(a, b) := c if {
	valid_version(a)
	valid_version(b)
	pa := version_parts(a)
	pb := version_parts(b)
	n := max([count(pa), count(pb)])
	diffs := [i | some i in numbers.range(0, n - 1); version_part(pa, i) != version_part(pb, i)]
	c := version_sign(pa, pb, diffs)
}

version_sign(_, _, diffs) := 0 if count(diffs) == 0

version_sign(pa, pb, diffs) := 1 if {
	count(diffs) > 0
	version_part(pa, diffs[0]) > version_part(pb, diffs[0])
}

version_sign(pa, pb, diffs) := -1 if {
	count(diffs) > 0
	version_part(pa, diffs[0]) < version_part(pb, diffs[0])
}

weekdays := {"Sunday": 0, "Monday": 1, "Tuesday": 2, "Wednesday": 3, "Thursday": 4, "Friday": 5, "Saturday": 6}

# zone is the window's time zone, else the fallback, else UTC.
zone(w, fallback) := w.time_zone if {
	object.get(w, "time_zone", "") != ""
} else := fallback if {
	fallback != ""
} else := "UTC"

local_minute(ns, tz) := (c[0] * 60) + c[1] if c := time.clock([ns, tz])

local_day(ns, tz) := weekdays[time.weekday([ns, tz])]

day_allowed(w, day) if count(list(w, "days")) == 0

day_allowed(w, day) if day in list(w, "days")

# window_open holds when ns falls inside window w (minutes after local
# midnight; end before start wraps past midnight; start == end is all day).
window_open(w, tz, ns) if {
	w.start < w.end
	day_allowed(w, local_day(ns, tz))
	m := local_minute(ns, tz)
	m >= w.start
	m < w.end
}

window_open(w, tz, ns) if {
	w.start == w.end
	day_allowed(w, local_day(ns, tz))
}

window_open(w, tz, ns) if {
	w.start > w.end
	day_allowed(w, local_day(ns, tz))
	local_minute(ns, tz) >= w.start
}

window_open(w, tz, ns) if {
	w.start > w.end
	day_allowed(w, local_day(ns - day_ns, tz))
	local_minute(ns, tz) < w.end
}

# next_window_open is the next opening of w after ns (within 8 days).
next_window_open(w, tz, ns) := min({t |
	m := local_minute(ns, tz)
	some d in numbers.range(0, 8)
	t := ns + ((((d * 1440) + w.start) - m) * minute_ns)
	t > ns
	window_open(w, tz, t)
})

# window_close is when the window open at ns closes.
window_close(w, tz, ns) := ns + ((w.end - m) * minute_ns) if {
	m := local_minute(ns, tz)
	m < w.end
} else := ns + (((1440 - m) + w.end) * minute_ns) if {
	m := local_minute(ns, tz)
}

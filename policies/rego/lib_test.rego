package patchway.lib_test

import data.patchway.lib

test_version_compare_numeric_per_part if {
	lib.version_compare("6.1.7601.24000", "6.1.7601.9999") == 1
	lib.version_compare("5.2.3790.3229", "5.2.3790.4392") == -1
	lib.version_compare("10.0.17763.1", "10.0.17763.1") == 0
}

test_version_compare_missing_parts_are_zero if {
	lib.version_compare("6.1", "6.1.0.0") == 0
	lib.version_compare("6.1.0.1", "6.1") == 1
}

test_version_compare_undefined_for_non_numeric if {
	not lib.version_compare("6.1.beta", "6.1")
	not lib.version_compare("", "6.1")
	not lib.version_compare("6..1", "6.1")
	not lib.version_compare("-6.1", "6.1")
}

test_duration_text_uses_the_largest_exact_unit if {
	lib.duration(lib.day_ns * 7) == "7d"
	lib.duration(lib.hour_ns * 36) == "36h"
	lib.duration(lib.day_ns) == "24h"
	lib.duration(lib.minute_ns * 90) == "90m"
	lib.duration(0) == "0m"
}

test_ts_is_undefined_for_go_zero_time if {
	not lib.ts("0001-01-01T00:00:00Z")
	lib.ts("1970-01-01T00:00:01Z") == 1000000000
}

test_list_of_absent_or_null_is_empty if {
	lib.list({}, "x") == []
	lib.list({"x": null}, "x") == []
	lib.list({"x": [1]}, "x") == [1]
}

# 2026-11-23 is a Monday.
monday_10h := time.parse_rfc3339_ns("2026-11-23T10:00:00Z")

test_window_open_same_day if {
	lib.window_open({"days": [1], "start": 540, "end": 1020}, "UTC", monday_10h)
	not lib.window_open({"days": [2], "start": 540, "end": 1020}, "UTC", monday_10h)
	not lib.window_open({"days": [], "start": 660, "end": 1020}, "UTC", monday_10h)
}

test_window_wrapping_midnight if {
	w := {"days": [1], "start": 1320, "end": 360}
	lib.window_open(w, "UTC", time.parse_rfc3339_ns("2026-11-23T23:00:00Z"))
	lib.window_open(w, "UTC", time.parse_rfc3339_ns("2026-11-24T02:00:00Z"))
	not lib.window_open(w, "UTC", time.parse_rfc3339_ns("2026-11-24T23:00:00Z"))
}

test_window_all_day if {
	lib.window_open({"days": [1], "start": 0, "end": 0}, "UTC", monday_10h)
}

test_window_in_the_zone_of_the_site if {
	# 10:00 UTC is 19:00 in Tokyo: inside 18:00-20:00 there, not in UTC.
	lib.window_open({"start": 1080, "end": 1200}, "Asia/Tokyo", monday_10h)
	not lib.window_open({"start": 1080, "end": 1200}, "UTC", monday_10h)
}

test_next_window_open_and_close if {
	w := {"days": [1], "start": 1320, "end": 360}
	lib.next_window_open(w, "UTC", monday_10h) == time.parse_rfc3339_ns("2026-11-23T22:00:00Z")
	lib.window_close(w, "UTC", time.parse_rfc3339_ns("2026-11-23T23:00:00Z")) == time.parse_rfc3339_ns("2026-11-24T06:00:00Z")
	lib.window_close(w, "UTC", time.parse_rfc3339_ns("2026-11-24T01:00:00Z")) == time.parse_rfc3339_ns("2026-11-24T06:00:00Z")
	lib.next_window_open({"days": [1], "start": 540, "end": 1020}, "UTC", monday_10h) == time.parse_rfc3339_ns("2026-11-30T09:00:00Z")
}

test_window_times_fall_on_the_minute_whatever_the_seconds_of_now if {
	w := {"days": [1], "start": 1260, "end": 360}
	now := time.parse_rfc3339_ns("2026-11-23T10:00:11.5Z")
	lib.next_window_open(w, "UTC", now) == time.parse_rfc3339_ns("2026-11-23T21:00:00Z")
	lib.window_close(w, "Europe/Paris", time.parse_rfc3339_ns("2026-11-23T23:00:42Z")) == time.parse_rfc3339_ns("2026-11-24T05:00:00Z")
}

test_zone_falls_back if {
	lib.zone({"time_zone": "Europe/Paris"}, "UTC") == "Europe/Paris"
	lib.zone({}, "Asia/Tokyo") == "Asia/Tokyo"
	lib.zone({}, "") == "UTC"
}

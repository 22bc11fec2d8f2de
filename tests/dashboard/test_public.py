"""The dashboard package's public names; a change here is an API change."""

import lsq.dashboard


def test_public_names() -> None:
    assert sorted(lsq.dashboard.__all__) == [
        "Dashboard",
        "LogLine",
        "LogRing",
        "ProcessSampler",
        "TraceStore",
        "TrafficBook",
        "dashboard_url",
        "mount",
        "otlp_endpoint",
        "parse_otlp",
    ]
    assert (
        lsq.dashboard.dashboard_url(8123, "t0k") == "http://127.0.0.1:8123/?token=t0k"
    )

"""Regenerate config/grafana/dashboards/*.json from the Python dashboards."""

from infra.dashboards import write

if __name__ == "__main__":
    for path in write():
        print(path)

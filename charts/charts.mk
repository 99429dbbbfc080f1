# Helm chart: CRDs and RBAC rules are copied from the generated files.
GENERATE_TARGETS += generate-chart

.PHONY: generate-chart
generate-chart: $(filter-out generate-chart,$(GENERATE_TARGETS))
	charts/sync.sh

GENERATE_TARGETS += generate-dashboards
.PHONY: generate-dashboards
generate-dashboards:
	$(NODE) deploy/dashboards/generate.ts

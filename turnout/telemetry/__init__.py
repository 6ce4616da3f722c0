"""OpenTelemetry setup, GenAI spans for model calls and graph steps, trace files and viewers.
Library code uses only the OpenTelemetry API; nothing here is active until configured."""

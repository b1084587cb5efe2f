"""sop: a workflow engine for the customer-service procedures of a property-management office."""

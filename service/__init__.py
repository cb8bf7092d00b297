"""The read path and the API's calls: servicer, query engine, conversions, server start-up."""

"""The read path: gRPC servicers, server start-up, the error interceptor, the client."""

/**
 * The routers this library hands to a host (`oauth()`, `wellKnown()`, `protectedResource()`) are
 * usually mounted at the root, so every request of the host passes them. Express's router
 * (router 2.x) charges a request for entering it even when nothing inside matches: it saves and
 * restores `req.baseUrl`, `req.next` and `req.params` in closures, and leaves through
 * `setImmediate`, an extra turn of the event loop. Measured in process (Express alone, no
 * network), that was about 8 µs of CPU per host request passing the OAuth router, where bare
 * Express spends about 60 µs on the whole request.
 *
 * `ownPathsRouter(serves, dispatch)` is an ordinary Express router holding the one `dispatch`
 * layer. A request that `serves` says it does not serve goes straight to the host's `next()`,
 * without entering the router, as it would after a plain middleware. Every other request, and
 * every request once the host has added layers of its own to the router (`router.use(...)`),
 * takes Express's usual path.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from 'express';

export function ownPathsRouter(serves: (req: Request) => boolean, dispatch: RequestHandler): Router {
  const router = express.Router();
  router.use(dispatch);
  // `router(req, res, next)` calls `router.handle` (router 2.x): this instance's own handle answers first.
  const inner = router as unknown as ExpressRouterInternals;
  const handle = inner.handle;
  inner.handle = function handleOwnPaths(req: Request, res: Response, next: NextFunction): void {
    if (inner.stack.length === 1 && !serves(req)) return next();
    handle.call(router, req, res, next);
  };
  return router;
}

/** What the router package documents but @types/express does not type. */
interface ExpressRouterInternals {
  handle(req: Request, res: Response, next: NextFunction): void;
  stack: unknown[];
}

package io.kvant.server.http;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.grpc.Status;
import io.kvant.api.v1.GenerateChunk;
import io.kvant.api.v1.TokenLogprob;
import io.kvant.engine.tokenizer.Tokenizer;
import io.kvant.server.grpc.Admission;
import io.kvant.server.grpc.InvalidFieldException;
import io.kvant.server.grpc.RequestValidator;
import io.kvant.server.grpc.ResponseSink;
import io.kvant.server.model.ServedModel;
import io.netty.buffer.ByteBufInputStream;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.ContextPropagators;
import io.opentelemetry.context.propagation.TextMapGetter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Clock;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;

/**
 * The OpenAI-compatible endpoints of one HTTP connection: {@code POST /v1/completions}, {@code POST
 * /v1/chat/completions} (whole or as server-sent events) and {@code GET /v1/models}. Requests go
 * through the same {@link Admission} as gRPC calls (same validation, scheduler, limits, metrics,
 * spans and request ids). One request at a time per connection; when the connection closes, the
 * request in flight is cancelled and its KV blocks freed.
 */
final class OpenAiHandler extends SimpleChannelInboundHandler<FullHttpRequest> {
  private static final System.Logger LOG = System.getLogger("io.kvant.server.http");
  static final String REQUEST_ID = "x-request-id";

  private static final TextMapGetter<HttpHeaders> HEADERS =
      new TextMapGetter<>() {
        @Override
        public Iterable<String> keys(HttpHeaders carrier) {
          return carrier.names();
        }

        @Override
        public String get(HttpHeaders carrier, String key) {
          return carrier == null ? null : carrier.get(key);
        }
      };

  private final Admission admission;
  private final ContextPropagators propagators;
  private final Optional<byte[]> token;
  private final Clock clock;
  private final int outboxCapacity;
  private Runnable cancel;
  private HttpStream stream;

  OpenAiHandler(
      Admission admission,
      ContextPropagators propagators,
      Optional<String> token,
      Clock clock,
      int outboxCapacity) {
    this.admission = admission;
    this.propagators = propagators;
    this.token = token.map(t -> t.getBytes(StandardCharsets.UTF_8));
    this.clock = clock;
    this.outboxCapacity = outboxCapacity;
  }

  @Override
  protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
    String requestId = UUID.randomUUID().toString();
    boolean keepAlive = HttpUtil.isKeepAlive(req);
    try {
      String given = req.headers().get(REQUEST_ID);
      if (given != null && !given.isEmpty()) {
        try {
          requestId = RequestValidator.checkRequestId(given, REQUEST_ID);
        } catch (InvalidFieldException e) {
          throw OpenAiException.invalid(REQUEST_ID, e.getMessage());
        }
      }
      if (cancel != null) {
        throw new OpenAiException(
            409, "invalid_request_error", null, null, "one request at a time per connection");
      }
      String path = new io.netty.handler.codec.http.QueryStringDecoder(req.uri()).path();
      route(ctx, req, path, requestId, keepAlive);
    } catch (OpenAiException e) {
      sendError(ctx, e, requestId, keepAlive);
    }
  }

  private void route(
      ChannelHandlerContext ctx,
      FullHttpRequest req,
      String path,
      String requestId,
      boolean keepAlive) {
    switch (path) {
      case "/v1/models" -> {
        requireMethod(req, HttpMethod.GET);
        authorize(req);
        send(ctx, HttpResponseStatus.OK, models(), requestId, keepAlive);
      }
      case "/v1/completions", "/v1/chat/completions" -> {
        requireMethod(req, HttpMethod.POST);
        authorize(req);
        JsonNode body = parse(req);
        OpenAiRequest r =
            path.equals("/v1/completions")
                ? OpenAiRequest.completion(body)
                : OpenAiRequest.chat(body);
        generate(ctx, req, r, requestId, keepAlive);
      }
      default ->
          throw new OpenAiException(
              404,
              "invalid_request_error",
              null,
              "unknown_url",
              "Unknown request URL: " + req.method() + " " + path);
    }
  }

  private void generate(
      ChannelHandlerContext ctx,
      FullHttpRequest req,
      OpenAiRequest r,
      String requestId,
      boolean keepAlive) {
    ServedModel model =
        admission
            .models()
            .find(r.model)
            .orElseThrow(
                () ->
                    new OpenAiException(
                        404,
                        "invalid_request_error",
                        "model",
                        "model_not_found",
                        "The model '" + r.model + "' does not exist (see GET /v1/models)"));
    Tokenizer tokenizer = model.serving().model().tokenizer();
    String id = (r.chat ? "chatcmpl-" : "cmpl-") + requestId;
    OpenAiJson json =
        new OpenAiJson(id, r.chat, model.name(), clock.instant().getEpochSecond(), tokenizer);
    Context parent =
        propagators.getTextMapPropagator().extract(Context.root(), req.headers(), HEADERS);
    Admission.CallInfo info =
        new Admission.CallInfo(requestId, parent, null, r.chat ? "chat" : "text_completion");
    Status[] refused = new Status[1];
    Admission.Caller caller =
        new Admission.Caller() {
          @Override
          public void refuse(Status status) {
            refused[0] = status;
          }

          @Override
          public void onCancel(Runnable c) {
            cancel = c;
          }
        };
    ResponseSink.Delivery delivery;
    if (r.stream) {
      stream =
          new HttpStream(
              ctx.channel(),
              json,
              r,
              outboxCapacity,
              () -> {
                cancel = null;
                stream = null;
                if (!keepAlive) {
                  ctx.close();
                }
              });
      delivery = stream;
    } else {
      delivery = whole(ctx, json, r, requestId, keepAlive);
    }
    // The model name the request carries is the served one: the listing's name, not "".
    if (r.chat) {
      admission.chat(
          r.chatRequest.toBuilder().setModel(model.name()).build(), info, caller, delivery);
    } else {
      admission.generate(
          r.completion.toBuilder().setModel(model.name()).build(), info, caller, delivery);
    }
    if (refused[0] != null) {
      cancel = null;
      stream = null;
      throw StatusErrors.of(refused[0], r.chat);
    }
    if (r.stream) {
      // Outputs are written by tasks on this event loop, so they follow these headers.
      HttpResponse head = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
      head.headers()
          .set(HttpHeaderNames.CONTENT_TYPE, "text/event-stream; charset=utf-8")
          .set(HttpHeaderNames.CACHE_CONTROL, "no-cache")
          .set(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED)
          .set(REQUEST_ID, requestId);
      if (keepAlive) {
        head.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
      }
      ctx.writeAndFlush(head);
    }
  }

  /** Accumulates a non-streamed response and sends it when the request ends. */
  private ResponseSink.Delivery whole(
      ChannelHandlerContext ctx,
      OpenAiJson json,
      OpenAiRequest r,
      String requestId,
      boolean keepAlive) {
    StringBuilder text = new StringBuilder();
    List<TokenLogprob> logprobs = new ArrayList<>();
    return new ResponseSink.Delivery() {
      @Override
      public void chunk(GenerateChunk chunk) {
        text.append(chunk.getText());
        logprobs.addAll(chunk.getLogprobsList());
      }

      @Override
      public void end(GenerateChunk last, Status status) {
        ctx.executor()
            .execute(
                () -> {
                  cancel = null;
                  if (!ctx.channel().isActive()) {
                    return;
                  }
                  if (status.isOk()) {
                    send(
                        ctx,
                        HttpResponseStatus.OK,
                        json.complete(text.toString(), logprobs, r.logprobs > 0, last),
                        requestId,
                        keepAlive);
                  } else {
                    sendError(ctx, StatusErrors.of(status, r.chat), requestId, keepAlive);
                  }
                });
      }
    };
  }

  private ObjectNode models() {
    ObjectNode o = OpenAiJson.MAPPER.createObjectNode().put("object", "list");
    ArrayNode data = o.putArray("data");
    for (ServedModel m : admission.models().all()) {
      data.addObject()
          .put("id", m.name())
          .put("object", "model")
          .put("created", 0)
          .put("owned_by", "kvant")
          .put("version", m.serving().id());
    }
    return o;
  }

  private static void requireMethod(FullHttpRequest req, HttpMethod method) {
    if (!req.method().equals(method)) {
      throw new OpenAiException(
          405,
          "invalid_request_error",
          null,
          "method_not_allowed",
          "Method " + req.method() + " is not allowed here; use " + method);
    }
  }

  /** The same bearer token as the Generation service, compared in constant time. */
  private void authorize(FullHttpRequest req) {
    if (token.isEmpty()) {
      return;
    }
    String header = req.headers().get(HttpHeaderNames.AUTHORIZATION);
    if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      throw new OpenAiException(
          401,
          "invalid_request_error",
          null,
          "invalid_api_key",
          "Missing 'Authorization: Bearer <token>' header");
    }
    byte[] given = header.substring(7).strip().getBytes(StandardCharsets.UTF_8);
    if (!MessageDigest.isEqual(given, token.get())) {
      throw new OpenAiException(
          401, "invalid_request_error", null, "invalid_api_key", "Incorrect API key provided");
    }
  }

  private static JsonNode parse(FullHttpRequest req) {
    try (ByteBufInputStream in = new ByteBufInputStream(req.content().duplicate())) {
      JsonNode body = OpenAiJson.MAPPER.readTree((java.io.InputStream) in);
      if (body == null || !body.isObject()) {
        throw OpenAiException.invalid(null, "the request body must be a JSON object");
      }
      return body;
    } catch (JacksonException e) {
      throw OpenAiException.invalid(
          null, "the request body is not valid JSON: " + e.getOriginalMessage());
    } catch (IOException e) {
      throw OpenAiException.invalid(null, "cannot read the request body");
    }
  }

  private static void sendError(
      ChannelHandlerContext ctx, OpenAiException e, String requestId, boolean keepAlive) {
    send(ctx, HttpResponseStatus.valueOf(e.httpStatus), OpenAiJson.error(e), requestId, keepAlive);
  }

  private static void send(
      ChannelHandlerContext ctx,
      HttpResponseStatus status,
      ObjectNode body,
      String requestId,
      boolean keepAlive) {
    byte[] bytes = body.toString().getBytes(StandardCharsets.UTF_8);
    FullHttpResponse res =
        new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, status, Unpooled.wrappedBuffer(bytes));
    res.headers()
        .set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.APPLICATION_JSON)
        .setInt(HttpHeaderNames.CONTENT_LENGTH, bytes.length)
        .set(REQUEST_ID, requestId);
    if (keepAlive) {
      res.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
      ctx.writeAndFlush(res);
    } else {
      ctx.writeAndFlush(res).addListener(ChannelFutureListener.CLOSE);
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    if (stream != null && ctx.channel().isWritable()) {
      stream.drain();
    }
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    Runnable c = cancel;
    cancel = null;
    if (c != null) {
      LOG.log(System.Logger.Level.DEBUG, "client went away; cancelling its request");
      c.run();
    }
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    LOG.log(System.Logger.Level.DEBUG, "HTTP connection error: " + cause);
    ctx.close();
  }
}

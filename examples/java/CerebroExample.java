/*
 * Author:  Cerebro team
 * Date:    2026-11-24
 * Subject: The main app's side of Cerebro in plain Java 17: sync call, async call, signed callback receiver.
 *          Verifies signature scheme v2 (timestamp, method, target, Idempotency-Key, body) and drops
 *          repeated keys; replays of a captured callback are shown failing.
 * Tagline: No thread waits; the answer knocks when it is ready.
 *
 * Only java.net.http (client), com.sun.net.httpserver (receiver) and javax.crypto.Mac (HMAC).
 *
 *   javac -d out CerebroExample.java
 *   java -cp out CerebroExample <cerebro-url> <secret> <receiver-port>
 *        [sync-path sync-json async-path async-json]
 */

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

public final class CerebroExample {

    static final long TOLERANCE_SECONDS = 300;
    static final String SCHEME = "v2=";

    /**
     * Signature scheme v2: lowercase hex HMAC-SHA256 over
     * "cerebro-v2\n" + timestamp + "\n" + METHOD + "\n" + request target + "\n" + Idempotency-Key
     * + "\n" + raw body, the text parts as the ISO-8859-1 octets HTTP carries them in.
     */
    static String sign(String secret, String timestamp, String method, String target, String key,
            byte[] body) throws Exception {
        String head = "cerebro-v2\n" + timestamp + "\n" + method + "\n" + target + "\n" + key + "\n";
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(secret.getBytes(StandardCharsets.UTF_8), "HmacSHA256"));
        mac.update(head.getBytes(StandardCharsets.ISO_8859_1));
        byte[] digest = mac.doFinal(body);
        StringBuilder hex = new StringBuilder();
        for (byte b : digest) {
            hex.append(String.format("%02x", b));
        }
        return hex.toString();
    }

    /** Verifies a call; returns null when valid, else the reason to reject it. */
    static String verify(String secret, String method, String target, String key, String timestamp,
            String signature, byte[] body) throws Exception {
        if (timestamp == null || signature == null || !signature.startsWith(SCHEME)) {
            return "missing or malformed signature headers (expected " + SCHEME + "<hex>)";
        }
        if (key == null || key.isEmpty()) {
            return "missing Idempotency-Key";
        }
        for (String part : new String[] {method, target, key, timestamp}) {
            if (part.indexOf('\n') >= 0 || part.indexOf('\r') >= 0) {
                return "line break in a signed part";
            }
        }
        long ts;
        try {
            ts = Long.parseLong(timestamp.trim());
        } catch (NumberFormatException e) {
            return "bad timestamp";
        }
        if (Math.abs(System.currentTimeMillis() / 1000 - ts) > TOLERANCE_SECONDS) {
            return "timestamp outside tolerance (replay?)";
        }
        byte[] expected = sign(secret, timestamp.trim(), method, target, key, body)
                .getBytes(StandardCharsets.US_ASCII);
        byte[] given = signature.substring(SCHEME.length()).trim().toLowerCase()
                .getBytes(StandardCharsets.ISO_8859_1);
        return MessageDigest.isEqual(expected, given) ? null : "signature mismatch";
    }

    /** The request target exactly as received: raw path and raw query. */
    static String target(URI uri) {
        return uri.getRawPath() + (uri.getRawQuery() == null ? "" : "?" + uri.getRawQuery());
    }

    /** One verified call as received: enough to replay it byte for byte. */
    record Call(String target, String timestamp, String signature, String key, byte[] body) {
    }

    /**
     * The callback receiver: verifies the v2 signature, then drops repeated Idempotency-Keys. The
     * key is signed, so a captured call replayed with a fresh key fails verification, and replayed
     * as it is, it is a duplicate. (A real main app keeps the processed keys durably, e.g. a
     * unique column, for as long as Cerebro may deliver again: the retry window, one hour.)
     */
    static final class Receiver {
        final String secret;
        final BlockingQueue<Call> accepted = new LinkedBlockingQueue<>();
        final Map<String, Boolean> seen = new ConcurrentHashMap<>();
        final HttpServer server;

        Receiver(String secret, int port) throws IOException {
            this.secret = secret;
            server = HttpServer.create(new InetSocketAddress("127.0.0.1", port), 0);
            server.createContext("/", this::handle);
            server.start();
        }

        void handle(HttpExchange exchange) throws IOException {
            byte[] body = exchange.getRequestBody().readAllBytes();
            int status;
            try {
                var headers = exchange.getRequestHeaders();
                String key = headers.getFirst("Idempotency-Key");
                Call call = new Call(target(exchange.getRequestURI()), headers.getFirst("X-Cerebro-Timestamp"),
                        headers.getFirst("X-Cerebro-Signature"), key, body);
                String reason = verify(secret, exchange.getRequestMethod(), call.target(), key,
                        call.timestamp(), call.signature(), body);
                if (reason != null) {
                    System.out.println("REJECTED " + reason);
                    status = 401;
                } else if (seen.putIfAbsent(key, Boolean.TRUE) != null) {
                    System.out.println("DUPLICATE " + key);
                    status = 200;  // already processed: acknowledge so Cerebro stops retrying
                } else {
                    accepted.add(call);
                    status = 200;
                }
            } catch (Exception e) {
                status = 500;
            }
            exchange.sendResponseHeaders(status, -1);
            exchange.close();
        }
    }

    static HttpResponse<String> post(HttpClient client, String url, String json, Map<String, String> headers)
            throws Exception {
        HttpRequest.Builder builder = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(10))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json));
        headers.forEach(builder::header);
        return client.send(builder.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** Sends a captured call again, with {@code key} as its Idempotency-Key, to {@code url}. */
    static void replay(HttpClient client, String url, Call call, String key, int expected, String line)
            throws Exception {
        HttpResponse<String> answer = post(client, url, new String(call.body(), StandardCharsets.UTF_8), Map.of(
                "X-Cerebro-Timestamp", call.timestamp(),
                "X-Cerebro-Signature", call.signature(),
                "Idempotency-Key", key));
        check(answer.statusCode() == expected, line + ": got " + answer.statusCode());
        System.out.println(line);
    }

    static void check(boolean ok, String message) {
        if (!ok) {
            System.out.println("FAIL " + message);
            System.exit(1);
        }
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: CerebroExample <cerebro-url> <secret> <receiver-port> "
                    + "[sync-path sync-json async-path async-json]");
            System.exit(2);
        }
        String base = args[0].replaceAll("/+$", "");
        String secret = args[1];
        int port = Integer.parseInt(args[2]);
        String syncPath = args.length > 3 ? args[3] : "/v1/jobs/sync_add";
        String syncJson = args.length > 4 ? args[4] : "{\"a\": 1, \"b\": 2}";
        String asyncPath = args.length > 5 ? args[5] : "/v1/jobs/square";
        String asyncJson = args.length > 6 ? args[6] : "{\"x\": 12}";

        // The signature scheme, checked against the vector Python's tests use.
        check(sign("secret", "1700000000", "POST", "/cerebro/callbacks/jobs/square", "task-1",
                "{}".getBytes(StandardCharsets.UTF_8))
                .equals("f0bfb648328355e5c2b9463e5a74c69da2be04ed21a0ce646f0b3fe660c4a0d8"), "known HMAC vector");

        Receiver receiver = new Receiver(secret, port);
        HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
        String self = "http://127.0.0.1:" + port;
        try {
            // 1. A tampered callback is rejected: a valid signature of another body.
            String ts = Long.toString(System.currentTimeMillis() / 1000);
            String signed = "{\"task_id\":\"forged\",\"status\":\"succeeded\"}";
            String tampered = "{\"task_id\":\"forged\",\"status\":\"failed\"}";
            HttpResponse<String> forged = post(client, self + "/cb", tampered, Map.of(
                    "X-Cerebro-Timestamp", ts,
                    "X-Cerebro-Signature", SCHEME + sign(secret, ts, "POST", "/cb", "forged",
                            signed.getBytes(StandardCharsets.UTF_8)),
                    "Idempotency-Key", "forged"));
            check(forged.statusCode() == 401, "tampered callback must be rejected, got " + forged.statusCode());
            System.out.println("TAMPERED REJECTED 401");

            // 2. A synchronous endpoint answers at once.
            HttpResponse<String> sync = post(client, base + syncPath, syncJson, Map.of());
            check(sync.statusCode() == 200, "sync call: " + sync.statusCode() + " " + sync.body());
            System.out.println("SYNC 200 " + sync.body());

            // 3. An async endpoint acknowledges with 202 and a task id; the result comes as a callback.
            long started = System.nanoTime();
            HttpResponse<String> ack = post(client, base + asyncPath, asyncJson, Map.of());
            double ackMs = (System.nanoTime() - started) / 1e6;
            check(ack.statusCode() == 202, "async call: " + ack.statusCode() + " " + ack.body());
            Matcher m = Pattern.compile("\"task_id\"\\s*:\\s*\"([^\"]+)\"").matcher(ack.body());
            check(m.find(), "no task_id in " + ack.body());
            String taskId = m.group(1);
            System.out.printf("ASYNC 202 task %s in %.1f ms%n", taskId, ackMs);

            Call callback = receiver.accepted.poll(60, TimeUnit.SECONDS);
            check(callback != null, "no verified callback within 60 s");
            check(callback.key().equals(taskId), "callback for another task: " + callback.key());
            String text = new String(callback.body(), StandardCharsets.UTF_8);
            System.out.println("CALLBACK VERIFIED " + callback.key() + " " + text);

            // 4. Cerebro's real callback, captured and replayed: as it is, a duplicate (dropped);
            //    with a fresh Idempotency-Key or to another path, the signature fails.
            replay(client, self + callback.target(), callback, callback.key(), 200, "REPLAY SAME KEY DUPLICATE 200");
            replay(client, self + callback.target(), callback, "fresh-" + callback.key(), 401,
                    "REPLAY FRESH KEY REJECTED 401");
            replay(client, self + "/other/path", callback, callback.key(), 401, "REPLAY OTHER PATH REJECTED 401");
            check(receiver.accepted.isEmpty(), "a replay was accepted");
        } finally {
            receiver.server.stop(0);
        }
        System.out.println("OK");
    }
}

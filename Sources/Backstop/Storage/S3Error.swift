import Foundation

/// What an S3-compatible store answered (or failed to), naming the endpoint and bucket and
/// saying what to check.
public enum S3Error: Error, CustomStringConvertible, ExitStatusProviding {
    /// The server could not be reached, or kept failing, through every retry (69).
    case unavailable(endpoint: String, operation: String, attempts: Int, lastError: String)
    /// Wrong credentials, or access to the bucket refused (77).
    case accessDenied(endpoint: String, bucket: String, operation: String, code: String, message: String)
    /// No credentials anywhere (77).
    case noCredentials(profile: String, file: String)
    /// The bucket does not exist (69: nothing to do here until it is created).
    case noSuchBucket(endpoint: String, bucket: String)
    /// Any other refusal (74).
    case rejected(endpoint: String, operation: String, status: Int, code: String, message: String)
    /// An answer that is not what S3 sends (74).
    case badResponse(endpoint: String, operation: String, reason: String)
    /// `s3://` URLs and flags that do not make a repository address (64).
    case invalidAddress(String, reason: String)

    public var description: String {
        switch self {
        case let .unavailable(endpoint, operation, attempts, lastError):
            return "cannot \(operation) on \(endpoint): gave up after \(attempts) attempts; last error: \(lastError). Check that the endpoint is right (--s3-endpoint, AWS_ENDPOINT_URL) and the server is up, then run the command again: what was stored is unchanged and a new run reuses the frames already uploaded"
        case let .accessDenied(endpoint, bucket, operation, code, message):
            return "cannot \(operation) in bucket \(bucket) on \(endpoint): access denied (\(code)\(message.isEmpty ? "" : ": \(message)")). Check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the AWS_PROFILE section of ~/.aws/credentials), AWS_SESSION_TOKEN if the keys are temporary, AWS_REGION, the host's clock, and that the key's policy allows s3:GetObject, s3:PutObject, s3:DeleteObject and s3:ListBucket on the bucket (see the README, \"S3 repositories\")"
        case let .noCredentials(profile, file):
            return "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give a [\(profile)] section with aws_access_key_id and aws_secret_access_key in \(file) (AWS_PROFILE chooses the section, AWS_SHARED_CREDENTIALS_FILE the file)"
        case let .noSuchBucket(endpoint, bucket):
            return "the bucket \(bucket) does not exist on \(endpoint): create the bucket first (backstop creates the repository inside an existing bucket, never the bucket), or check the bucket name and the endpoint"
        case let .rejected(endpoint, operation, status, code, message):
            return "cannot \(operation) on \(endpoint): the server answered \(status) \(code)\(message.isEmpty ? "" : ": \(message)")"
        case let .badResponse(endpoint, operation, reason):
            return "cannot \(operation) on \(endpoint): unexpected answer: \(reason)"
        case let .invalidAddress(text, reason):
            return "\(text) is not an S3 repository address: \(reason); write s3://BUCKET/PREFIX"
        }
    }

    public var exitStatus: ExitStatus {
        switch self {
        case .unavailable, .noSuchBucket: return .unavailable
        case .accessDenied, .noCredentials: return .permissionDenied
        case .rejected, .badResponse: return .ioError
        case .invalidAddress: return .usage
        }
    }
}

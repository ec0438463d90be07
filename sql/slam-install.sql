/*
Speediful SLAM: install or upgrade SLAM in one user database.

  Who:    a member of sysadmin (the script signs the SLAM procedures and creates the
          certificate user in master that alone may run master.dbo.xp_slam).
  Where:  the database that will use SLAM: USE YourDatabase; then run this script
          (SSMS, or sqlcmd -b -d YourDatabase -i slam-install.sql).
  Before: sql/slam-master.sql, once per instance.
  Again:  safe to re-run; it is also the upgrade. Tables are created only if missing and
          never emptied; procedures are replaced (CREATE OR ALTER) and signed afresh.

What it creates here:
  tables      dbo.SLAM_Settings, dbo.SLAM_Connections, dbo.SLAM_Log
  procedures  dbo.SLAM_setup_jwt, SLAM_remove_jwt, SLAM_list_keys, SLAM_add_connection,
              SLAM_list_connections, SLAM_use_connection_username, SLAM_test_connection,
              SLAM_remove_connection, SLAM_ping, SLAM_help
  role        SLAM_operator: may run the SLAM procedures (add users to it)
  certificate SLAM_signing: signs the procedures; its private key is removed after signing
  user        SLAM_worker: the worker's login (see below), with SELECT, INSERT, UPDATE and
              DELETE on the three tables and nothing else
and in master: a certificate and a user SLAM_xp_<database> from it, with EXECUTE on
xp_slam and nothing else. No TRUSTWORTHY, no cross-database ownership chaining.

The worker's user. The sqlcmd variable SLAM_WORKER_ACCOUNT names the worker's Windows
account, as for sql/slam-master.sql, which must have created its login first:
  - sqlcmd: sqlcmd -b -d YourDatabase -i slam-install.sql -v SLAM_WORKER_ACCOUNT="DOMAIN\account"
  - slam install-sql passes it for you.
  - SSMS in SQLCMD mode: add the line  :setvar SLAM_WORKER_ACCOUNT "DOMAIN\account"  at the top.
  - SSMS as usual (no SQLCMD mode): the variable stays as written, and the script uses the
    service's default virtual account, NT SERVICE\SpeedifulSLAM.
  - An empty value (-v SLAM_WORKER_ACCOUNT="") creates no user: the worker then uses SQL
    Server authentication, and its user and rights are yours to create.
If SLAM_worker exists already for another login, the script says so and installs nothing.

If a check below fails, the script says why and runs nothing more (SET NOEXEC ON).
*/
SET NOCOUNT ON;
SET XACT_ABORT ON;
SET ANSI_NULLS ON;
SET QUOTED_IDENTIFIER ON;
GO

-------------------------------------------------------------------------------------------
-- Checks: a user database, sysadmin, xp_slam registered, the worker's login
-------------------------------------------------------------------------------------------
-- sqlcmd (and slam install-sql) replace the variable below; SSMS without SQLCMD mode sends it
-- as written, and the test below then falls back on the service's virtual account.
DECLARE @worker SYSNAME = LTRIM(RTRIM(N'$(SLAM_WORKER_ACCOUNT)'));
IF LEFT(@worker, 2) = N'$' + N'('
    SET @worker = N'NT SERVICE\SpeedifulSLAM';
DECLARE @worker_login_sid VARBINARY(85) = (SELECT sid FROM sys.server_principals WHERE name = @worker);
DECLARE @worker_user_sid VARBINARY(85) = (SELECT sid FROM sys.database_principals WHERE name = N'SLAM_worker');
-- A login is at most one user per database: already another user here (or the owner, dbo),
-- it cannot become SLAM_worker.
DECLARE @worker_other_user SYSNAME = (SELECT TOP (1) name FROM sys.database_principals
    WHERE sid = @worker_login_sid AND name <> N'SLAM_worker');

DECLARE @refusal NVARCHAR(2048) = NULL;
IF DB_NAME() IN (N'master', N'model', N'msdb', N'tempdb')
    SET @refusal = N'Run sql/slam-install.sql in the user database that will use SLAM (USE YourDatabase;), not in ' + DB_NAME() + N'.';
ELSE IF IS_SRVROLEMEMBER(N'sysadmin') <> 1
    SET @refusal = N'Run sql/slam-install.sql as a member of sysadmin: it signs the SLAM procedures and creates their certificate user in master.';
ELSE IF NOT EXISTS (SELECT 1 FROM master.sys.extended_procedures WHERE name = N'xp_slam')
    SET @refusal = N'master.dbo.xp_slam is not registered on this instance: run sql/slam-master.sql first.';
ELSE IF @worker <> N'' AND @worker_login_sid IS NULL
    SET @refusal = N'The login ' + @worker + N' for SLAM''s worker does not exist: run sql/slam-master.sql first, with the same SLAM_WORKER_ACCOUNT.';
ELSE IF @worker <> N'' AND DATABASE_PRINCIPAL_ID(N'SLAM_worker') IS NOT NULL AND (@worker_user_sid IS NULL OR @worker_user_sid <> @worker_login_sid)
    SET @refusal = N'The database user SLAM_worker exists already, for another login than ' + @worker + N' (' + ISNULL(SUSER_SNAME(@worker_user_sid), N'none') + N'): pass that login as SLAM_WORKER_ACCOUNT, or drop the user (DROP USER SLAM_worker;) and run this script again.';
ELSE IF @worker <> N'' AND @worker_other_user IS NOT NULL
    SET @refusal = N'The login ' + @worker + N' is already the database user ' + @worker_other_user
        + CASE WHEN @worker_other_user = N'dbo' THEN N' (it owns ' + DB_NAME() + N')' ELSE N'' END
        + N' here, and a login can be only one user per database: rename that user to SLAM_worker,'
        + N' or give the database another owner, then run this script again.';
IF @refusal IS NOT NULL
BEGIN
    RAISERROR(N'%s Nothing was installed.', 16, 1, @refusal) WITH NOWAIT;
    SET NOEXEC ON;
END;
GO

-------------------------------------------------------------------------------------------
-- Tables (created if missing; schema version 1 recorded as an extended property)
-------------------------------------------------------------------------------------------
-- The active connection: exactly one row. SLAM_use_connection_username sets Username.
IF OBJECT_ID(N'dbo.SLAM_Settings', N'U') IS NULL
BEGIN
    CREATE TABLE dbo.SLAM_Settings (
        Id        INT           NOT NULL CONSTRAINT PK_SLAM_Settings PRIMARY KEY
                                         CONSTRAINT CK_SLAM_Settings_one_row CHECK (Id = 1),
        Username  NVARCHAR(255) COLLATE Latin1_General_100_CI_AS NULL,
        UpdatedAt DATETIME2(3)  NULL
    );
    EXEC sys.sp_addextendedproperty @name = N'SLAM_schema_version', @value = 1,
        @level0type = N'SCHEMA', @level0name = N'dbo', @level1type = N'TABLE', @level1name = N'SLAM_Settings';
END;
-- Its one row, also put back on a re-run if someone deleted it.
IF NOT EXISTS (SELECT 1 FROM dbo.SLAM_Settings WHERE Id = 1)
BEGIN
    INSERT INTO dbo.SLAM_Settings (Id, Username, UpdatedAt) VALUES (1, NULL, NULL);
END;
GO

-- Stored connections. Secrets are sealed by the worker before they reach SQL Server:
-- the *Sealed columns hold ciphertext only. Usernames compare case-insensitively, as
-- Salesforce's do, whatever the database's collation.
IF OBJECT_ID(N'dbo.SLAM_Connections', N'U') IS NULL
BEGIN
    CREATE TABLE dbo.SLAM_Connections (
        Username          NVARCHAR(255)  COLLATE Latin1_General_100_CI_AS NOT NULL
                                         CONSTRAINT PK_SLAM_Connections PRIMARY KEY,
        AuthMethod        NVARCHAR(32)   NOT NULL
                                         CONSTRAINT CK_SLAM_Connections_AuthMethod CHECK (AuthMethod IN (N'jwt_bearer', N'security_token')),
        Domain            NVARCHAR(255)  NOT NULL,
        EnvironmentName   NVARCHAR(128)  NULL,
        ApiVersion        INT            NOT NULL,
        KeyName           NVARCHAR(64)   NULL,
        ConsumerKey       NVARCHAR(256)  NULL,
        PasswordSealed    VARBINARY(MAX) NULL,
        TokenSealed       VARBINARY(MAX) NULL,
        KeyPasswordSealed VARBINARY(MAX) NULL,
        InstanceUrl       NVARCHAR(255)  NULL,
        OrgId             NVARCHAR(18)   NULL,
        CreatedAt         DATETIME2(3)   NOT NULL,
        UpdatedAt         DATETIME2(3)   NOT NULL,
        LastTestAt        DATETIME2(3)   NULL,
        LastTestOk        BIT            NULL,
        LastTestMessage   NVARCHAR(2000) NULL
    );
    EXEC sys.sp_addextendedproperty @name = N'SLAM_schema_version', @value = 1,
        @level0type = N'SCHEMA', @level0name = N'dbo', @level1type = N'TABLE', @level1name = N'SLAM_Connections';
END;
GO

-- Every change, and every failure, of a SLAM operation.
IF OBJECT_ID(N'dbo.SLAM_Log', N'U') IS NULL
BEGIN
    CREATE TABLE dbo.SLAM_Log (
        Id          BIGINT IDENTITY(1, 1) NOT NULL CONSTRAINT PK_SLAM_Log PRIMARY KEY,
        At          DATETIME2(3)   NOT NULL,
        Operation   NVARCHAR(64)   NOT NULL,
        Username    NVARCHAR(255)  NULL,
        Caller      NVARCHAR(512)  NOT NULL,
        Outcome     NVARCHAR(16)   NOT NULL,
        ErrorNumber INT            NULL,
        Message     NVARCHAR(4000) NOT NULL
    );
    EXEC sys.sp_addextendedproperty @name = N'SLAM_schema_version', @value = 1,
        @level0type = N'SCHEMA', @level0name = N'dbo', @level1type = N'TABLE', @level1name = N'SLAM_Log';
END;
GO

-------------------------------------------------------------------------------------------
-- The worker's user: reads and writes the three tables, and may do nothing else
-------------------------------------------------------------------------------------------
DECLARE @worker SYSNAME = LTRIM(RTRIM(N'$(SLAM_WORKER_ACCOUNT)'));
IF LEFT(@worker, 2) = N'$' + N'('
    SET @worker = N'NT SERVICE\SpeedifulSLAM';

IF @worker = N''
BEGIN
    RAISERROR(N'No database user was created for SLAM''s worker (SLAM_WORKER_ACCOUNT is empty): the worker uses SQL Server authentication, and its user and rights are yours to create.', 10, 1) WITH NOWAIT;
END
ELSE
BEGIN
    -- The checks above made sure that the login exists and that SLAM_worker, if it exists, is its user.
    IF DATABASE_PRINCIPAL_ID(N'SLAM_worker') IS NULL
    BEGIN
        DECLARE @create_user NVARCHAR(MAX) = N'CREATE USER SLAM_worker FOR LOGIN ' + QUOTENAME(@worker) + N' WITH DEFAULT_SCHEMA = dbo;';
        EXEC sys.sp_executesql @create_user;
        RAISERROR(N'Created the database user SLAM_worker for the login %s.', 10, 1, @worker) WITH NOWAIT;
    END;
    GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.SLAM_Settings TO SLAM_worker;
    GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.SLAM_Connections TO SLAM_worker;
    GRANT SELECT, INSERT, UPDATE, DELETE ON dbo.SLAM_Log TO SLAM_worker;
    RAISERROR(N'The database user SLAM_worker (login %s) may SELECT, INSERT, UPDATE and DELETE in SLAM_Settings, SLAM_Connections and SLAM_Log, and nothing else.', 10, 1, @worker) WITH NOWAIT;
END;
GO

-------------------------------------------------------------------------------------------
-- Procedures
-------------------------------------------------------------------------------------------
-- <generated from slam_protocol::catalogue: edit the catalogue, then SLAM_BLESS=1 cargo test -p slam-tsql>
-- SLAM_setup_jwt: Generates a JWT keypair: a private key (.pem) and a self-signed certificate (.crt) to upload to the External Client App.
CREATE OR ALTER PROCEDURE dbo.SLAM_setup_jwt
    @key_name NVARCHAR(4000) = NULL, -- Name of the keypair, e.g. 'acme-prod' (files {key_name}.pem and {key_name}.crt); left out, this machine's host name [at most 64 characters]
    @password NVARCHAR(4000) = NULL, -- Passphrase that encrypts the private key (strongly recommended; not your Salesforce password) (secret: never logged, echoed or returned) [at most 256 characters]
    @cert_days INT = 365, -- Days until the certificate expires
    @force BIT = 0 -- Replace a keypair whose certificate is still valid
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    -- The worker writes through its own connection: inside a transaction this session would wait on
    -- the worker while the worker waits on this session's locks, which no deadlock monitor sees.
    IF @@TRANCOUNT > 0
        INSERT INTO @problems (number, message)
        VALUES (50602, N'SLAM_setup_jwt cannot run inside a transaction: SLAM''s worker writes through its own connection, and would wait on this transaction''s locks while this session waits on it, a deadlock SQL Server cannot detect. COMMIT or ROLLBACK first. @@TRANCOUNT = ' + CONVERT(NVARCHAR(10), @@TRANCOUNT) + N'.');
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_setup_jwt: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'setup_jwt' AS [operation],
            JSON_QUERY((SELECT @key_name AS [key_name], @password AS [password], @cert_days AS [cert_days], @force AS [force] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)) AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_setup_jwt may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_setup_jwt: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_remove_jwt: Deletes a keypair's files from this machine (does not revoke access in Salesforce).
CREATE OR ALTER PROCEDURE dbo.SLAM_remove_jwt
    @key_name NVARCHAR(4000) -- Name of the keypair to remove [at most 64 characters]
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    IF @key_name IS NULL OR LTRIM(RTRIM(@key_name)) = N''
        INSERT INTO @problems (number, message) VALUES (50601, N'@key_name is required: Name of the keypair to remove.');
    -- The worker writes through its own connection: inside a transaction this session would wait on
    -- the worker while the worker waits on this session's locks, which no deadlock monitor sees.
    IF @@TRANCOUNT > 0
        INSERT INTO @problems (number, message)
        VALUES (50602, N'SLAM_remove_jwt cannot run inside a transaction: SLAM''s worker writes through its own connection, and would wait on this transaction''s locks while this session waits on it, a deadlock SQL Server cannot detect. COMMIT or ROLLBACK first. @@TRANCOUNT = ' + CONVERT(NVARCHAR(10), @@TRANCOUNT) + N'.');
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_remove_jwt: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'remove_jwt' AS [operation],
            JSON_QUERY((SELECT @key_name AS [key_name] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)) AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_remove_jwt may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_remove_jwt: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_list_keys: Lists the keypairs on this machine with their certificates' expiry and fingerprints.
CREATE OR ALTER PROCEDURE dbo.SLAM_list_keys
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_list_keys: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'list_keys' AS [operation],
            JSON_QUERY(N'{}') AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_list_keys may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_list_keys: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_add_connection: Validates, tests, stores (secrets sealed) and activates a Salesforce connection.
CREATE OR ALTER PROCEDURE dbo.SLAM_add_connection
    @username NVARCHAR(4000), -- Salesforce username [at most 255 characters]
    @auth_method NVARCHAR(4000) = N'security_token', -- 'jwt_bearer' (recommended) or 'security_token' (SOAP login(), retired in Summer '27) [at most 32 characters]
    @consumer_key NVARCHAR(4000) = NULL, -- Consumer Key (Client ID) of the External Client App; required for jwt_bearer [at most 256 characters]
    @key_name NVARCHAR(4000) = NULL, -- Keypair made by SLAM_setup_jwt; required for jwt_bearer [at most 64 characters]
    @key_password NVARCHAR(4000) = NULL, -- Passphrase of the keypair; required when it was made with @password (secret: never logged, echoed or returned) [at most 256 characters]
    @password NVARCHAR(4000) = NULL, -- Salesforce password; required for security_token (secret: never logged, echoed or returned) [at most 256 characters]
    @token NVARCHAR(4000) = NULL, -- Salesforce security token; required for security_token (secret: never logged, echoed or returned) [at most 256 characters]
    @domain NVARCHAR(4000) = N'login', -- 'login', 'test' (sandboxes) or a My Domain such as 'acme.my' or 'acme--partial.sandbox.my' [at most 255 characters]
    @environment_name NVARCHAR(4000) = NULL, -- Optional alias for this environment, e.g. 'Acme prod' [at most 128 characters]
    @api_version INT = 60, -- Salesforce API version used for this connection
    @skip_test BIT = 0 -- Store the connection without testing it
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    IF @username IS NULL OR LTRIM(RTRIM(@username)) = N''
        INSERT INTO @problems (number, message) VALUES (50601, N'@username is required: Salesforce username.');
    -- The worker writes through its own connection: inside a transaction this session would wait on
    -- the worker while the worker waits on this session's locks, which no deadlock monitor sees.
    IF @@TRANCOUNT > 0
        INSERT INTO @problems (number, message)
        VALUES (50602, N'SLAM_add_connection cannot run inside a transaction: SLAM''s worker writes through its own connection, and would wait on this transaction''s locks while this session waits on it, a deadlock SQL Server cannot detect. COMMIT or ROLLBACK first. @@TRANCOUNT = ' + CONVERT(NVARCHAR(10), @@TRANCOUNT) + N'.');
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_add_connection: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'add_connection' AS [operation],
            JSON_QUERY((SELECT @username AS [username], @auth_method AS [auth_method], @consumer_key AS [consumer_key], @key_name AS [key_name], @key_password AS [key_password], @password AS [password], @token AS [token], @domain AS [domain], @environment_name AS [environment_name], @api_version AS [api_version], @skip_test AS [skip_test] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)) AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_add_connection may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_add_connection: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_list_connections: Lists the stored connections (never their secrets).
CREATE OR ALTER PROCEDURE dbo.SLAM_list_connections
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_list_connections: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'list_connections' AS [operation],
            JSON_QUERY(N'{}') AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_list_connections may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_list_connections: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_use_connection_username: Makes a stored connection the active one (SLAM_Settings.Username).
CREATE OR ALTER PROCEDURE dbo.SLAM_use_connection_username
    @username NVARCHAR(4000) -- Salesforce username of a stored connection [at most 255 characters]
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    IF @username IS NULL OR LTRIM(RTRIM(@username)) = N''
        INSERT INTO @problems (number, message) VALUES (50601, N'@username is required: Salesforce username of a stored connection.');
    -- The worker writes through its own connection: inside a transaction this session would wait on
    -- the worker while the worker waits on this session's locks, which no deadlock monitor sees.
    IF @@TRANCOUNT > 0
        INSERT INTO @problems (number, message)
        VALUES (50602, N'SLAM_use_connection_username cannot run inside a transaction: SLAM''s worker writes through its own connection, and would wait on this transaction''s locks while this session waits on it, a deadlock SQL Server cannot detect. COMMIT or ROLLBACK first. @@TRANCOUNT = ' + CONVERT(NVARCHAR(10), @@TRANCOUNT) + N'.');
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_use_connection_username: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'use_connection_username' AS [operation],
            JSON_QUERY((SELECT @username AS [username] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)) AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_use_connection_username may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_use_connection_username: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_test_connection: Logs in with a stored connection to confirm it still works, and records the result.
CREATE OR ALTER PROCEDURE dbo.SLAM_test_connection
    @username NVARCHAR(4000) -- Salesforce username of a stored connection [at most 255 characters]
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    IF @username IS NULL OR LTRIM(RTRIM(@username)) = N''
        INSERT INTO @problems (number, message) VALUES (50601, N'@username is required: Salesforce username of a stored connection.');
    -- The worker writes through its own connection: inside a transaction this session would wait on
    -- the worker while the worker waits on this session's locks, which no deadlock monitor sees.
    IF @@TRANCOUNT > 0
        INSERT INTO @problems (number, message)
        VALUES (50602, N'SLAM_test_connection cannot run inside a transaction: SLAM''s worker writes through its own connection, and would wait on this transaction''s locks while this session waits on it, a deadlock SQL Server cannot detect. COMMIT or ROLLBACK first. @@TRANCOUNT = ' + CONVERT(NVARCHAR(10), @@TRANCOUNT) + N'.');
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_test_connection: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'test_connection' AS [operation],
            JSON_QUERY((SELECT @username AS [username] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)) AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_test_connection may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_test_connection: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_remove_connection: Deletes a stored connection.
CREATE OR ALTER PROCEDURE dbo.SLAM_remove_connection
    @username NVARCHAR(4000) -- Salesforce username of a stored connection [at most 255 characters]
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    IF @username IS NULL OR LTRIM(RTRIM(@username)) = N''
        INSERT INTO @problems (number, message) VALUES (50601, N'@username is required: Salesforce username of a stored connection.');
    -- The worker writes through its own connection: inside a transaction this session would wait on
    -- the worker while the worker waits on this session's locks, which no deadlock monitor sees.
    IF @@TRANCOUNT > 0
        INSERT INTO @problems (number, message)
        VALUES (50602, N'SLAM_remove_connection cannot run inside a transaction: SLAM''s worker writes through its own connection, and would wait on this transaction''s locks while this session waits on it, a deadlock SQL Server cannot detect. COMMIT or ROLLBACK first. @@TRANCOUNT = ' + CONVERT(NVARCHAR(10), @@TRANCOUNT) + N'.');
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_remove_connection: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'remove_connection' AS [operation],
            JSON_QUERY((SELECT @username AS [username] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER, INCLUDE_NULL_VALUES)) AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_remove_connection may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_remove_connection: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_ping: Checks that the SLAM worker answers: its version, uptime and cached sessions.
CREATE OR ALTER PROCEDURE dbo.SLAM_ping
AS
BEGIN
    SET NOCOUNT ON;
    SET XACT_ABORT ON;

    -- Every problem is collected first, so one run shows them all.
    DECLARE @problems TABLE (
        id INT IDENTITY(1, 1) NOT NULL PRIMARY KEY,
        number INT NOT NULL,
        message NVARCHAR(1000) NOT NULL
    );
    IF EXISTS (SELECT 1 FROM @problems)
    BEGIN
        DECLARE @problem_number INT = (SELECT MAX(number) FROM @problems);
        DECLARE @problem_text NVARCHAR(2048) = N'SLAM_ping: nothing was done:';
        SELECT @problem_text = LEFT(@problem_text + NCHAR(10) + N'- ' + message, 2048) FROM @problems ORDER BY id;
        THROW @problem_number, @problem_text, 1;
    END;

    -- The request, exactly as docs/protocol.md defines it; secrets travel only on the local pipe.
    DECLARE @request NVARCHAR(MAX) = (
        SELECT
            1 AS [version],
            CONVERT(NVARCHAR(36), NEWID()) AS [id],
            N'ping' AS [operation],
            JSON_QUERY(N'{}') AS [args],
            JSON_QUERY((SELECT ORIGINAL_LOGIN() AS [login], DB_NAME() AS [database], @@SERVERNAME AS [server], @@SPID AS [spid], APP_NAME() AS [application] FOR JSON PATH, WITHOUT_ARRAY_WRAPPER)) AS [caller]
        FOR JSON PATH, WITHOUT_ARRAY_WRAPPER
    );

    DECLARE @rc INT, @error_number INT, @error_message NVARCHAR(4000);
    BEGIN TRY
        EXEC @rc = master.dbo.xp_slam @request, @error_number OUTPUT, @error_message OUTPUT;
    END TRY
    BEGIN CATCH
        SELECT @rc = -1,
            @error_number = CASE ERROR_NUMBER() WHEN 2812 THEN 50603 WHEN 229 THEN 50604 ELSE 50605 END,
            @error_message = CASE ERROR_NUMBER()
                WHEN 2812 THEN N'master.dbo.xp_slam is not registered on this instance: a sysadmin runs sql/slam-master.sql once per instance.'
                WHEN 229 THEN N'SLAM_ping may not run master.dbo.xp_slam: its certificate signature is missing (ALTER PROCEDURE drops it). Re-run sql/slam-install.sql in this database.'
                ELSE N'SLAM_ping: calling master.dbo.xp_slam failed: ' + ERROR_MESSAGE() END;
    END CATCH;
    -- The XP's return code and OUTPUT parameters decide, never its messages: THROW at severity 16
    -- fails a SQL Agent step and is caught by TRY...CATCH.
    IF @rc <> 0 OR ISNULL(@error_number, 0) <> 0
    BEGIN
        DECLARE @number INT = CASE WHEN @error_number >= 50000 THEN @error_number ELSE 50605 END;
        DECLARE @text NVARCHAR(2048) = LEFT(ISNULL(@error_message, N'master.dbo.xp_slam failed without a message; return code ' + CONVERT(NVARCHAR(11), @rc) + N'.'), 2048);
        THROW @number, @text, 1;
    END;
    RETURN 0;
END;
GO

-- SLAM_help: every SLAM procedure and parameter, with the installed version.
CREATE OR ALTER PROCEDURE dbo.SLAM_help
AS
BEGIN
    SET NOCOUNT ON;
    SELECT
        help.procedure_name,
        help.parameter_name,
        help.parameter_type,
        help.default_value,
        CONVERT(BIT, help.is_required) AS is_required,
        CONVERT(BIT, help.is_secret) AS is_secret,
        help.description,
        N'0.1.0 (protocol 1)' AS slam_version
    FROM (VALUES
        (1, 0, N'SLAM_setup_jwt', NULL, NULL, NULL, 0, 0, N'Generates a JWT keypair: a private key (.pem) and a self-signed certificate (.crt) to upload to the External Client App'),
        (1, 1, N'SLAM_setup_jwt', N'@key_name', N'NVARCHAR(4000)', N'NULL', 0, 0, N'Name of the keypair, e.g. ''acme-prod'' (files {key_name}.pem and {key_name}.crt); left out, this machine''s host name [at most 64 characters]'),
        (1, 2, N'SLAM_setup_jwt', N'@password', N'NVARCHAR(4000)', N'NULL', 0, 1, N'Passphrase that encrypts the private key (strongly recommended; not your Salesforce password) (secret: never logged, echoed or returned) [at most 256 characters]'),
        (1, 3, N'SLAM_setup_jwt', N'@cert_days', N'INT', N'365', 0, 0, N'Days until the certificate expires'),
        (1, 4, N'SLAM_setup_jwt', N'@force', N'BIT', N'0', 0, 0, N'Replace a keypair whose certificate is still valid'),
        (2, 0, N'SLAM_remove_jwt', NULL, NULL, NULL, 0, 0, N'Deletes a keypair''s files from this machine (does not revoke access in Salesforce)'),
        (2, 1, N'SLAM_remove_jwt', N'@key_name', N'NVARCHAR(4000)', N'(required)', 1, 0, N'Name of the keypair to remove [at most 64 characters]'),
        (3, 0, N'SLAM_list_keys', NULL, NULL, NULL, 0, 0, N'Lists the keypairs on this machine with their certificates'' expiry and fingerprints'),
        (4, 0, N'SLAM_add_connection', NULL, NULL, NULL, 0, 0, N'Validates, tests, stores (secrets sealed) and activates a Salesforce connection'),
        (4, 1, N'SLAM_add_connection', N'@username', N'NVARCHAR(4000)', N'(required)', 1, 0, N'Salesforce username [at most 255 characters]'),
        (4, 2, N'SLAM_add_connection', N'@auth_method', N'NVARCHAR(4000)', N'N''security_token''', 0, 0, N'''jwt_bearer'' (recommended) or ''security_token'' (SOAP login(), retired in Summer ''27) [at most 32 characters]'),
        (4, 3, N'SLAM_add_connection', N'@consumer_key', N'NVARCHAR(4000)', N'NULL', 0, 0, N'Consumer Key (Client ID) of the External Client App; required for jwt_bearer [at most 256 characters]'),
        (4, 4, N'SLAM_add_connection', N'@key_name', N'NVARCHAR(4000)', N'NULL', 0, 0, N'Keypair made by SLAM_setup_jwt; required for jwt_bearer [at most 64 characters]'),
        (4, 5, N'SLAM_add_connection', N'@key_password', N'NVARCHAR(4000)', N'NULL', 0, 1, N'Passphrase of the keypair; required when it was made with @password (secret: never logged, echoed or returned) [at most 256 characters]'),
        (4, 6, N'SLAM_add_connection', N'@password', N'NVARCHAR(4000)', N'NULL', 0, 1, N'Salesforce password; required for security_token (secret: never logged, echoed or returned) [at most 256 characters]'),
        (4, 7, N'SLAM_add_connection', N'@token', N'NVARCHAR(4000)', N'NULL', 0, 1, N'Salesforce security token; required for security_token (secret: never logged, echoed or returned) [at most 256 characters]'),
        (4, 8, N'SLAM_add_connection', N'@domain', N'NVARCHAR(4000)', N'N''login''', 0, 0, N'''login'', ''test'' (sandboxes) or a My Domain such as ''acme.my'' or ''acme--partial.sandbox.my'' [at most 255 characters]'),
        (4, 9, N'SLAM_add_connection', N'@environment_name', N'NVARCHAR(4000)', N'NULL', 0, 0, N'Optional alias for this environment, e.g. ''Acme prod'' [at most 128 characters]'),
        (4, 10, N'SLAM_add_connection', N'@api_version', N'INT', N'60', 0, 0, N'Salesforce API version used for this connection'),
        (4, 11, N'SLAM_add_connection', N'@skip_test', N'BIT', N'0', 0, 0, N'Store the connection without testing it'),
        (5, 0, N'SLAM_list_connections', NULL, NULL, NULL, 0, 0, N'Lists the stored connections (never their secrets)'),
        (6, 0, N'SLAM_use_connection_username', NULL, NULL, NULL, 0, 0, N'Makes a stored connection the active one (SLAM_Settings.Username)'),
        (6, 1, N'SLAM_use_connection_username', N'@username', N'NVARCHAR(4000)', N'(required)', 1, 0, N'Salesforce username of a stored connection [at most 255 characters]'),
        (7, 0, N'SLAM_test_connection', NULL, NULL, NULL, 0, 0, N'Logs in with a stored connection to confirm it still works, and records the result'),
        (7, 1, N'SLAM_test_connection', N'@username', N'NVARCHAR(4000)', N'(required)', 1, 0, N'Salesforce username of a stored connection [at most 255 characters]'),
        (8, 0, N'SLAM_remove_connection', NULL, NULL, NULL, 0, 0, N'Deletes a stored connection'),
        (8, 1, N'SLAM_remove_connection', N'@username', N'NVARCHAR(4000)', N'(required)', 1, 0, N'Salesforce username of a stored connection [at most 255 characters]'),
        (9, 0, N'SLAM_ping', NULL, NULL, NULL, 0, 0, N'Checks that the SLAM worker answers: its version, uptime and cached sessions'),
        (10, 0, N'SLAM_help', NULL, NULL, NULL, 0, 0, N'Lists every SLAM procedure and parameter, with the installed version')
    ) AS help (procedure_order, parameter_order, procedure_name, parameter_name, parameter_type, default_value, is_required, is_secret, description)
    ORDER BY help.procedure_order, help.parameter_order;
    RETURN 0;
END;
GO
-- </generated>

-------------------------------------------------------------------------------------------
-- Security: sign the procedures that call xp_slam; let SLAM_operator run the procedures
-------------------------------------------------------------------------------------------
DECLARE @database SYSNAME = DB_NAME();
-- One master principal per database; a name too long for SYSNAME is cut and made unique
-- with a hash of the whole name (sql/slam-uninstall.sql computes it the same way).
DECLARE @master_principal SYSNAME = CASE WHEN LEN(@database) <= 110 THEN N'SLAM_xp_' + @database
    ELSE N'SLAM_xp_' + LEFT(@database, 80) + N'_' + LEFT(CONVERT(NVARCHAR(64), HASHBYTES('SHA2_256', @database), 2), 32) END;
-- Used once, never stored: the private key is removed right after signing.
DECLARE @password NVARCHAR(128) = CONVERT(NVARCHAR(36), NEWID()) + N'-Aa1!-' + CONVERT(NVARCHAR(36), NEWID());
DECLARE @sql NVARCHAR(MAX);
-- Exactly the procedures this script wrote: only these are signed and granted. A pattern
-- such as SLAM_% would also sign a procedure someone else created under that name, and a
-- signed procedure may call xp_slam with a request for any database.
DECLARE @slam_procedures TABLE (name SYSNAME NOT NULL PRIMARY KEY, is_signed BIT NOT NULL);
-- <generated list of the SLAM procedures: SLAM_BLESS=1 cargo test -p slam-tsql>
INSERT INTO @slam_procedures (name, is_signed)
VALUES
    (N'SLAM_setup_jwt', 1),
    (N'SLAM_remove_jwt', 1),
    (N'SLAM_list_keys', 1),
    (N'SLAM_add_connection', 1),
    (N'SLAM_list_connections', 1),
    (N'SLAM_use_connection_username', 1),
    (N'SLAM_test_connection', 1),
    (N'SLAM_remove_connection', 1),
    (N'SLAM_ping', 1),
    (N'SLAM_help', 0);
-- </generated list>
DECLARE @signed TABLE (name SYSNAME NOT NULL PRIMARY KEY);
INSERT INTO @signed (name)
SELECT name FROM @slam_procedures WHERE is_signed = 1;

-- 0. Say which other dbo.SLAM_ procedures exist: SLAM neither signs nor grants them.
DECLARE @strangers NVARCHAR(2000) = NULL;
SELECT @strangers = LEFT(COALESCE(@strangers + N', ', N'') + p.name, 2000)
FROM sys.procedures AS p
WHERE p.schema_id = SCHEMA_ID(N'dbo') AND p.name LIKE N'SLAM[_]%'
    AND p.name NOT IN (SELECT name FROM @slam_procedures);
IF @strangers IS NOT NULL
    RAISERROR(N'Warning: these procedures are not part of this SLAM version, so they are neither signed nor granted to SLAM_operator: %s. Drop them if an older SLAM left them; if you did not create them, find out who did.', 10, 1, @strangers) WITH NOWAIT;

-- 1. The previous install's certificate: its remaining signatures, then itself; and its
--    copy and user in master.
IF CERT_ID(N'SLAM_signing') IS NOT NULL
BEGIN
    SET @sql = N'';
    SELECT @sql = @sql + N'DROP SIGNATURE FROM dbo.' + QUOTENAME(OBJECT_NAME(cp.major_id)) + N' BY CERTIFICATE SLAM_signing;' + NCHAR(10)
    FROM sys.crypt_properties AS cp
    JOIN sys.certificates AS c ON c.thumbprint = cp.thumbprint
    WHERE c.name = N'SLAM_signing' AND cp.class = 1;
    EXEC sys.sp_executesql @sql;
    DROP CERTIFICATE SLAM_signing;
END;
SET @sql = N'IF DATABASE_PRINCIPAL_ID(@p) IS NOT NULL EXEC (N''DROP USER '' + QUOTENAME(@p));
IF CERT_ID(@p) IS NOT NULL EXEC (N''DROP CERTIFICATE '' + QUOTENAME(@p));';
EXEC master.sys.sp_executesql @sql, N'@p SYSNAME', @p = @master_principal;

-- 2. A fresh certificate; every procedure that calls xp_slam signed; the private key removed,
--    so the certificate can never sign anything else.
SET @sql = N'CREATE CERTIFICATE SLAM_signing ENCRYPTION BY PASSWORD = ' + QUOTENAME(@password, N'''')
    + N' WITH SUBJECT = N''Speediful SLAM: lets the SLAM procedures run master.dbo.xp_slam'', EXPIRY_DATE = ''20991231'';';
EXEC sys.sp_executesql @sql;
SET @sql = N'';
SELECT @sql = @sql + N'ADD SIGNATURE TO dbo.' + QUOTENAME(name) + N' BY CERTIFICATE SLAM_signing WITH PASSWORD = '
    + QUOTENAME(@password, N'''') + N';' + NCHAR(10)
FROM @signed;
EXEC sys.sp_executesql @sql;
ALTER CERTIFICATE SLAM_signing REMOVE PRIVATE KEY;

-- 3. The public certificate in master, a user from it, and that user's one right.
DECLARE @public NVARCHAR(MAX) = CONVERT(NVARCHAR(MAX), CERTENCODED(CERT_ID(N'SLAM_signing')), 1);
SET @sql = N'CREATE CERTIFICATE ' + QUOTENAME(@master_principal) + N' FROM BINARY = ' + @public + N';
CREATE USER ' + QUOTENAME(@master_principal) + N' FROM CERTIFICATE ' + QUOTENAME(@master_principal) + N';
GRANT EXECUTE ON dbo.xp_slam TO ' + QUOTENAME(@master_principal) + N';';
EXEC master.sys.sp_executesql @sql;

-- 4. Who may run the SLAM procedures: members of SLAM_operator (and db_owner, sysadmin).
IF DATABASE_PRINCIPAL_ID(N'SLAM_operator') IS NULL
BEGIN
    CREATE ROLE SLAM_operator AUTHORIZATION dbo;
END;
SET @sql = N'';
SELECT @sql = @sql + N'GRANT EXECUTE ON dbo.' + QUOTENAME(name) + N' TO SLAM_operator;' + NCHAR(10)
FROM @slam_procedures;
EXEC sys.sp_executesql @sql;

DECLARE @count INT = (SELECT COUNT(*) FROM @signed);
RAISERROR(N'SLAM is installed in %s: %d procedures signed; master user %s may run xp_slam. Add users to the role SLAM_operator, then EXEC dbo.SLAM_ping; and EXEC dbo.SLAM_help;.', 10, 1, @database, @count, @master_principal) WITH NOWAIT;
GO

SET NOEXEC OFF;
GO
